# Install jobs/*.sbatch with the installed share directory as their fallback
# FPT_ROOT (set by the install(CODE) in CMakeLists.txt: FPT_JOBS_SRC,
# FPT_JOBS_DST, FPT_ROOT_INSTALLED). In the repository they source
#   ${FPT_ROOT:-${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}}/jobs/lib/fpt-job.sh
# which under sbatch is the submit directory; installed copies source
#   ${FPT_ROOT:-P/share/fpt}/jobs/lib/fpt-job.sh
file(GLOB scripts "${FPT_JOBS_SRC}/*.sbatch")
set(from [=[${FPT_ROOT:-${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}}]=])
set(to "\${FPT_ROOT:-${FPT_ROOT_INSTALLED}}")
foreach(src ${scripts})
  get_filename_component(name "${src}" NAME)
  file(READ "${src}" text)
  string(FIND "${text}" "${from}" at)
  if(at LESS 0)
    message(FATAL_ERROR "${src}: no line sources jobs/lib/fpt-job.sh from ${from}")
  endif()
  string(REPLACE "${from}" "${to}" text "${text}")
  message(STATUS "Installing: ${FPT_JOBS_DST}/${name}")
  file(WRITE "${FPT_JOBS_DST}/${name}" "${text}")
  file(CHMOD "${FPT_JOBS_DST}/${name}" PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE
       GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
endforeach()
