// The backbone kinds: one row each.
#include <string.h>

#include "fpt/backbone.h"

extern const fpt_backbone fpt_backbone_gpt2, fpt_backbone_lstm;

static const fpt_backbone *const kinds[] = {&fpt_backbone_gpt2, &fpt_backbone_lstm};

const fpt_backbone *fpt_backbone_find(const char *kind) {
  for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
    if (!strcmp(kinds[i]->kind, kind))
      return kinds[i];
  return NULL;
}

const char *fpt_backbone_kinds(void) { return "gpt2, lstm"; }
