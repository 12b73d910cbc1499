/* test-sm-count: the XEP-0198 counters of the sm module, modulo 2^32. */
#include "sm-count.h"

/* Acks count the difference modulo 2^32, across the wrap. */
static void
test_acked_wraps (void)
{
  guint32 n = 99;

  g_assert_true (sm_count_acked (10, 15, 5, &n));
  g_assert_cmpuint (n, ==, 5);
  g_assert_true (sm_count_acked (G_MAXUINT32 - 1, 2, 4, &n));
  g_assert_cmpuint (n, ==, 4);
  g_assert_true (sm_count_acked (G_MAXUINT32, 0, 1, &n));
  g_assert_cmpuint (n, ==, 1);
  g_assert_true (sm_count_acked (7, 7, 0, &n));
  g_assert_cmpuint (n, ==, 0);
}

/* An h beyond what was sent is refused, also one "behind" (a huge
 * difference modulo 2^32). */
static void
test_acked_too_high (void)
{
  guint32 n = 99;

  g_assert_false (sm_count_acked (10, 16, 5, &n));
  g_assert_false (sm_count_acked (G_MAXUINT32 - 1, 3, 4, &n));
  g_assert_false (sm_count_acked (10, 9, 5, &n));
  g_assert_cmpuint (n, ==, 99);
}

/* h of received stanzas is the 64-bit count's low 32 bits past the base. */
static void
test_h_in (void)
{
  g_assert_cmpuint (sm_count_h (5, 0), ==, 5);
  g_assert_cmpuint (sm_count_h ((guint64) G_MAXUINT32 + 3, 1), ==, 1);
  g_assert_cmpuint (sm_count_h (((guint64) 1 << 33) + 7, 7), ==, 0);
}

static void
test_parse (void)
{
  guint32 h = 1;

  g_assert_true (sm_count_parse ("4294967295", &h));
  g_assert_cmpuint (h, ==, G_MAXUINT32);
  g_assert_true (sm_count_parse ("0", &h));
  g_assert_cmpuint (h, ==, 0);
  g_assert_false (sm_count_parse ("4294967296", &h));
  g_assert_false (sm_count_parse ("-1", &h));
  g_assert_false (sm_count_parse ("12x", &h));
  g_assert_false (sm_count_parse ("", &h));
  g_assert_false (sm_count_parse (NULL, &h));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/sm/count/acked-wraps", test_acked_wraps);
  g_test_add_func ("/sm/count/acked-too-high", test_acked_too_high);
  g_test_add_func ("/sm/count/h-in", test_h_in);
  g_test_add_func ("/sm/count/parse", test_parse);
  return g_test_run ();
}
