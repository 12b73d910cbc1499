/* iterhist.c: the histogram of PBKDF2 iteration counts in use on a host.
 *
 * accounts.c keeps one per host so that a name without an account can be
 * given an iteration count drawn from the same mix as the stored accounts'
 * (an upgraded server has old accounts at the old count, new ones at the
 * new): a keyed hash of the name is a point in [0, 2^64), and the point's
 * quantile picks the bin.  Pure functions, no server state. */
#include "iterhist.h"

#include <string.h>

GArray *
myna_iterhist_new (void)
{
  return g_array_new (FALSE, TRUE, sizeof (MynaIterBin));
}

/* The index of @iterations's bin, or where it would be inserted. */
static guint
iterhist_find (GArray *hist, guint iterations, gboolean *found)
{
  guint lo = 0, hi = hist->len;

  while (lo < hi)
    {
      guint mid = lo + (hi - lo) / 2;
      guint at = g_array_index (hist, MynaIterBin, mid).iterations;
      if (at == iterations)
        {
          *found = TRUE;
          return mid;
        }
      if (at < iterations)
        lo = mid + 1;
      else
        hi = mid;
    }
  *found = FALSE;
  return lo;
}

gboolean
myna_iterhist_add (GArray *hist, guint iterations, gint64 delta)
{
  gboolean found;
  guint i;

  g_return_val_if_fail (hist != NULL, FALSE);
  i = iterhist_find (hist, iterations, &found);
  if (!found)
    {
      if (delta <= 0)
        return delta == 0;
      MynaIterBin bin = { iterations, (guint64) delta };
      g_array_insert_val (hist, i, bin);
      return TRUE;
    }
  MynaIterBin *bin = &g_array_index (hist, MynaIterBin, i);
  gboolean ok = delta >= 0 || bin->accounts >= (guint64) -delta;
  bin->accounts = ok ? bin->accounts + (guint64) delta : 0;
  if (bin->accounts == 0)
    g_array_remove_index (hist, i);
  return ok;
}

GArray *
myna_iterhist_parse (const char *text)
{
  g_autoptr(GArray) hist = myna_iterhist_new ();
  g_auto(GStrv) bins = NULL;

  if (text == NULL)
    return NULL;
  if (*text == '\0')
    return g_steal_pointer (&hist);
  bins = g_strsplit (text, ",", -1);
  for (guint i = 0; bins[i] != NULL; i++)
    {
      guint64 iterations, accounts;
      const char *colon = strchr (bins[i], ':');
      g_autofree char *head = colon != NULL ? g_strndup (bins[i], colon - bins[i]) : NULL;
      if (head == NULL
          || !g_ascii_string_to_unsigned (head, 10, 1, G_MAXUINT, &iterations, NULL))
        return NULL;
      if (!g_ascii_string_to_unsigned (colon + 1, 10, 1, G_MAXINT64, &accounts, NULL))
        return NULL;
      gboolean found;
      iterhist_find (hist, (guint) iterations, &found);
      if (found)
        return NULL;
      myna_iterhist_add (hist, (guint) iterations, (gint64) accounts);
    }
  return g_steal_pointer (&hist);
}

char *
myna_iterhist_format (GArray *hist)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < hist->len; i++)
    {
      const MynaIterBin *bin = &g_array_index (hist, MynaIterBin, i);
      g_string_append_printf (s, "%s%u:%" G_GUINT64_FORMAT, i > 0 ? "," : "", bin->iterations,
                              bin->accounts);
    }
  return g_string_free (s, FALSE);
}

guint64
myna_iterhist_total (GArray *hist)
{
  guint64 total = 0;

  for (guint i = 0; i < hist->len; i++)
    total += g_array_index (hist, MynaIterBin, i).accounts;
  return total;
}

/* floor (@point * @n / 2^64), exactly, for @n < 2^32. */
static guint64
iterhist_scale (guint64 point, guint64 n)
{
  guint64 hi = point >> 32, lo = point & 0xffffffffu;

  return (hi * n + ((lo * n) >> 32)) >> 32;
}

guint
myna_iterhist_pick (GArray *hist, guint64 point, guint fallback)
{
  guint64 total = myna_iterhist_total (hist), rank, seen = 0;

  if (total == 0)
    return fallback;
  if (total < G_GUINT64_CONSTANT (1) << 32)
    rank = iterhist_scale (point, total);
  else
    rank = point % total;        /* more than 4 billion accounts: near enough */
  for (guint i = 0; i < hist->len; i++)
    {
      const MynaIterBin *bin = &g_array_index (hist, MynaIterBin, i);
      seen += bin->accounts;
      if (rank < seen)
        return bin->iterations;
    }
  return g_array_index (hist, MynaIterBin, hist->len - 1).iterations;
}
