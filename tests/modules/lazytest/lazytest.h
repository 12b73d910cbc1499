/* lazytest.h: the typed configuration of the lazytest module, shared with
 * the tests that read its snapshot (myna_module_get_config). */
#pragma once

#include <glib.h>

typedef struct {
  char     *greeting;   /* string */
  gint64    limit;      /* int */
  gboolean  loud;       /* bool */
  char    **names;      /* list */
  gint64    buffer;     /* size */
  gint64    wait;       /* duration */
} LazyConfig;
