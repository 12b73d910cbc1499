/* iterhist.h: a histogram of the PBKDF2 iteration counts a host's stored
 * accounts use, and where a point of a 64-bit hash space falls on its
 * cumulative distribution (see iterhist.c).  Free of server state, so a
 * unit test compiles it in alone. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* One bin: how many accounts store @iterations. */
typedef struct {
  guint   iterations;
  guint64 accounts;
} MynaIterBin;

/* An empty histogram: a GArray of MynaIterBin, kept sorted by iterations,
 * without empty bins.  Returns: (transfer full) */
GArray  *myna_iterhist_new (void);
/* Parses "ITER:COUNT,ITER:COUNT…" (as myna_iterhist_format writes it; ""
 * is empty).  Returns: (transfer full) (nullable) NULL when unreadable. */
GArray  *myna_iterhist_parse (const char *text);
/* Returns: (transfer full) */
char    *myna_iterhist_format (GArray *hist);
/* Adds @delta (may be negative) accounts at @iterations.  Returns FALSE,
 * leaving the bin at zero, when it would go below zero. */
gboolean myna_iterhist_add (GArray *hist, guint iterations, gint64 delta);
guint64  myna_iterhist_total (GArray *hist);
/* The count at quantile @point / 2^64 of the accounts, bins taken in
 * ascending order: with points drawn uniformly, each count comes out with
 * its share of the accounts, and a point keeps its answer while the
 * accounts at or below it stay the same.  @fallback when empty. */
guint    myna_iterhist_pick (GArray *hist, guint64 point, guint fallback);

G_END_DECLS
