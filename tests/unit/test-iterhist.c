/* test-iterhist: the histogram of stored PBKDF2 iteration counts and the
 * mapping of a name's hash point onto it (core/iterhist.c), which picks
 * the count an unknown name's decoy credentials name. */
#include "iterhist.h"

static GArray *
hist_of (const char *text)
{
  GArray *h = myna_iterhist_parse (text);

  g_assert_nonnull (h);
  return h;
}

static void
test_parse_format (void)
{
  const char *good[] = { "", "4096:2", "4096:3,10000:1", "1:1,4294967295:18446744073" };
  const char *bad[] = { "x", "4096", "4096:", ":3", "4096:0", "0:1", "-1:2", "4096:-1",
                        "4096:1,4096:2", "4096:1,", "4096:1;10000:2", " 4096:1", "4096:1x",
                        "4294967296:1" };

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autoptr(GArray) h = hist_of (good[i]);
      g_autofree char *again = myna_iterhist_format (h);
      g_assert_cmpstr (again, ==, good[i]);
    }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      GArray *h = myna_iterhist_parse (bad[i]);
      if (h != NULL)
        g_error ("'%s' parsed", bad[i]);
    }
  g_assert_null (myna_iterhist_parse (NULL));
  /* Written in any order, kept sorted. */
  g_autoptr(GArray) h = hist_of ("10000:1,4096:3");
  g_autofree char *sorted = myna_iterhist_format (h);
  g_assert_cmpstr (sorted, ==, "4096:3,10000:1");
}

static void
test_add (void)
{
  g_autoptr(GArray) h = myna_iterhist_new ();

  g_assert_true (myna_iterhist_add (h, 10000, 1));
  g_assert_true (myna_iterhist_add (h, 4096, 2));
  g_assert_true (myna_iterhist_add (h, 20000, 1));
  g_assert_true (myna_iterhist_add (h, 4096, 1));
  g_autofree char *s1 = myna_iterhist_format (h);
  g_assert_cmpstr (s1, ==, "4096:3,10000:1,20000:1");
  g_assert_cmpuint (myna_iterhist_total (h), ==, 5);
  /* An emptied bin goes. */
  g_assert_true (myna_iterhist_add (h, 10000, -1));
  g_autofree char *s2 = myna_iterhist_format (h);
  g_assert_cmpstr (s2, ==, "4096:3,20000:1");
  /* Below zero is refused, and the bin is left empty. */
  g_assert_false (myna_iterhist_add (h, 10000, -1));
  g_assert_false (myna_iterhist_add (h, 20000, -2));
  g_assert_true (myna_iterhist_add (h, 4096, 0));
  g_autofree char *s3 = myna_iterhist_format (h);
  g_assert_cmpstr (s3, ==, "4096:3");
}

static void
test_pick_boundaries (void)
{
  g_autoptr(GArray) empty = myna_iterhist_new ();
  g_autoptr(GArray) one = hist_of ("4096:7");
  g_autoptr(GArray) h = hist_of ("4096:3,10000:1");
  const guint64 three_quarters = G_GUINT64_CONSTANT (3) << 62;

  /* No accounts: what a new account would get. */
  g_assert_cmpuint (myna_iterhist_pick (empty, 12345, 10000), ==, 10000);
  /* One count: always it, whatever the configured one. */
  g_assert_cmpuint (myna_iterhist_pick (one, 0, 10000), ==, 4096);
  g_assert_cmpuint (myna_iterhist_pick (one, G_MAXUINT64, 10000), ==, 4096);
  /* Three quarters of the space below, one above, to the point. */
  g_assert_cmpuint (myna_iterhist_pick (h, 0, 1), ==, 4096);
  g_assert_cmpuint (myna_iterhist_pick (h, three_quarters - 1, 1), ==, 4096);
  g_assert_cmpuint (myna_iterhist_pick (h, three_quarters, 1), ==, 10000);
  g_assert_cmpuint (myna_iterhist_pick (h, G_MAXUINT64, 1), ==, 10000);
}

/* Over evenly spread points each count comes out in exactly its share. */
static void
test_pick_exact_shares (void)
{
  g_autoptr(GArray) h = hist_of ("1000:5,4096:37,10000:11,600000:3");
  const guint64 total = 56, per = 1000;
  g_autoptr(GHashTable) seen = g_hash_table_new (NULL, NULL);

  /* total * per points, one at the middle of each equal slice. */
  for (guint64 i = 0; i < total * per; i++)
    {
      guint64 slice = G_MAXUINT64 / (total * per);
      guint c = myna_iterhist_pick (h, i * slice + slice / 2, 0);
      guint n = GPOINTER_TO_UINT (g_hash_table_lookup (seen, GUINT_TO_POINTER (c)));
      g_hash_table_insert (seen, GUINT_TO_POINTER (c), GUINT_TO_POINTER (n + 1));
    }
  for (guint i = 0; i < h->len; i++)
    {
      const MynaIterBin *bin = &g_array_index (h, MynaIterBin, i);
      guint n = GPOINTER_TO_UINT (g_hash_table_lookup (seen, GUINT_TO_POINTER (bin->iterations)));
      g_assert_cmpuint (n, ==, bin->accounts * per);
    }
  g_assert_cmpuint (g_hash_table_size (seen), ==, h->len);
}

/* Adding an account moves only the points next to a boundary, and only
 * towards the new account's count: a name keeps its answer unless the
 * stored accounts changed around its quantile. */
static void
test_pick_stable (void)
{
  g_autoptr(GArray) h = hist_of ("4096:99,10000:1");
  guint32 points[20000][2];
  guint moved = 0;

  for (guint i = 0; i < G_N_ELEMENTS (points); i++)
    {
      points[i][0] = g_test_rand_int ();
      points[i][1] = g_test_rand_int ();
    }
  g_autofree guint *before = g_new (guint, G_N_ELEMENTS (points));
  for (guint i = 0; i < G_N_ELEMENTS (points); i++)
    before[i] = myna_iterhist_pick (h, (guint64) points[i][0] << 32 | points[i][1], 0);
  myna_iterhist_add (h, 10000, 1);
  for (guint i = 0; i < G_N_ELEMENTS (points); i++)
    {
      guint now = myna_iterhist_pick (h, (guint64) points[i][0] << 32 | points[i][1], 0);
      if (now != before[i])
        {
          g_assert_cmpuint (before[i], ==, 4096);
          g_assert_cmpuint (now, ==, 10000);
          moved++;
        }
    }
  /* 99/100 - 99/101 of the space (about 196 of 20000): the least that
   * keeps the shares exact; drawing every name afresh would move about
   * 590. */
  g_test_message ("moved: %u of %zu", moved, G_N_ELEMENTS (points));
  g_assert_cmpuint (moved, >=, 120);
  g_assert_cmpuint (moved, <=, 280);
}

/* More accounts than 2^32 still pick within range. */
static void
test_pick_huge (void)
{
  g_autoptr(GArray) h = hist_of ("4096:5000000000,10000:5000000000");

  g_assert_cmpuint (myna_iterhist_total (h), ==, G_GUINT64_CONSTANT (10000000000));
  for (guint i = 0; i < 1000; i++)
    {
      guint64 p = (guint64) g_test_rand_int () << 32 | (guint32) g_test_rand_int ();
      guint c = myna_iterhist_pick (h, p, 0);
      g_assert_true (c == 4096 || c == 10000);
    }
  g_assert_cmpuint (myna_iterhist_pick (h, G_MAXUINT64, 0), !=, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/iterhist/parse-format", test_parse_format);
  g_test_add_func ("/iterhist/add", test_add);
  g_test_add_func ("/iterhist/pick-boundaries", test_pick_boundaries);
  g_test_add_func ("/iterhist/pick-exact-shares", test_pick_exact_shares);
  g_test_add_func ("/iterhist/pick-stable", test_pick_stable);
  g_test_add_func ("/iterhist/pick-huge", test_pick_huge);
  return g_test_run ();
}
