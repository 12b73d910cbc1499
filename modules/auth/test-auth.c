/* test-auth: the auth module's failure table (throttle.c) on a made-up
 * clock — counts, expiry on lookup and by sweep, the cap, and an eviction
 * policy a flood of fresh keys cannot turn against a victim's counts. */
#include "throttle.h"

#define SEC G_USEC_PER_SEC
#define WINDOW (300 * SEC)

static void
test_count (void)
{
  g_autoptr(AuthThrottle) t = auth_throttle_new (WINDOW, 100);

  g_assert_cmpuint (auth_throttle_count (t, "a\t1.2.3.4", 0), ==, 0);
  for (int i = 0; i < 3; i++)
    auth_throttle_add (t, "a\t1.2.3.4", i * SEC);
  g_assert_cmpuint (auth_throttle_count (t, "a\t1.2.3.4", 3 * SEC), ==, 3);
  auth_throttle_take_back (t, "a\t1.2.3.4", 4 * SEC);
  g_assert_cmpuint (auth_throttle_count (t, "a\t1.2.3.4", 4 * SEC), ==, 2);
  auth_throttle_forget (t, "a\t1.2.3.4");
  g_assert_cmpuint (auth_throttle_count (t, "a\t1.2.3.4", 4 * SEC), ==, 0);
  g_assert_cmpuint (auth_throttle_size (t), ==, 0);
}

/* 4,000 failures with distinct keys are all gone one window later, by
 * the sweep, without anybody looking them up. */
static void
test_expiry (void)
{
  g_autoptr(AuthThrottle) t = auth_throttle_new (WINDOW, 100000);

  for (int i = 0; i < 4000; i++)
    {
      g_autofree char *key = g_strdup_printf ("p\t10.0.%d.%d\tuser%d", i / 256, i % 256, i);
      auth_throttle_add (t, key, i * 1000);
    }
  auth_throttle_add (t, "u\tlate", WINDOW);
  g_assert_cmpuint (auth_throttle_size (t), ==, 4001);
  g_assert_cmpuint (auth_throttle_sweep (t, WINDOW), ==, 0);   /* not yet: the window is closed */
  g_assert_cmpuint (auth_throttle_sweep (t, WINDOW + 4000 * 1000), ==, 4000);
  g_assert_cmpuint (auth_throttle_size (t), ==, 1);
  /* Expired on lookup too. */
  g_assert_cmpuint (auth_throttle_count (t, "u\tlate", 2 * WINDOW + 1), ==, 0);
  g_assert_cmpuint (auth_throttle_size (t), ==, 0);
}

/* Full of fresh keys: the table stays at its cap, and the victim's counts
 * (a locked pair, a slowed account) outlive any number of fresh keys. */
static void
test_cap (void)
{
  const guint cap = 1000;
  g_autoptr(AuthThrottle) t = auth_throttle_new (WINDOW, cap);
  gint64 now = 0;

  for (int i = 0; i < 5; i++)
    {
      auth_throttle_add (t, "p\t1.2.3.4\tvictim", now);
      auth_throttle_add (t, "u\tvictim", now);
    }
  auth_throttle_add (t, "u\tonce", now);      /* an old count of 1 */
  for (guint i = 0; i < 20 * cap; i++)
    {
      g_autofree char *key = g_strdup_printf ("u\tflood%u", i);
      now += 1000;
      auth_throttle_add (t, key, now);
      g_assert_cmpuint (auth_throttle_size (t), <=, cap);
    }
  g_assert_cmpuint (auth_throttle_count (t, "p\t1.2.3.4\tvictim", now), ==, 5);
  g_assert_cmpuint (auth_throttle_count (t, "u\tvictim", now), ==, 5);
  /* Newest first among equal counts: the old count of 1 outlived the flood. */
  g_assert_cmpuint (auth_throttle_count (t, "u\tonce", now), ==, 1);
  g_assert_cmpuint (auth_throttle_evicted (t), >=, 19 * cap);
}

/* Expired entries make room before anything is evicted. */
static void
test_cap_expired_first (void)
{
  g_autoptr(AuthThrottle) t = auth_throttle_new (WINDOW, 100);

  for (int i = 0; i < 100; i++)
    {
      g_autofree char *key = g_strdup_printf ("a\t10.0.0.%d", i);
      auth_throttle_add (t, key, 0);
    }
  auth_throttle_add (t, "a\tnew", WINDOW + 1);
  g_assert_cmpuint (auth_throttle_size (t), ==, 1);
  g_assert_cmpuint (auth_throttle_evicted (t), ==, 0);
}

/* Evicting a victim's count of n takes a table full of counts above n. */
static void
test_cap_costly (void)
{
  const guint cap = 160;
  g_autoptr(AuthThrottle) t = auth_throttle_new (WINDOW, cap);
  gint64 now = 0;

  for (int i = 0; i < 3; i++)
    auth_throttle_add (t, "u\tvictim", now);
  /* Fresh keys with 3 failures each, newer than the victim's. */
  for (guint i = 0; i < 4 * cap; i++)
    {
      g_autofree char *key = g_strdup_printf ("u\tflood%u", i);
      now += 1000;
      for (int k = 0; k < 3; k++)
        auth_throttle_add (t, key, now);
    }
  g_assert_cmpuint (auth_throttle_count (t, "u\tvictim", now), ==, 3);
  /* Only counts above the victim's push it out. */
  for (guint i = 0; i < 2 * cap; i++)
    {
      g_autofree char *key = g_strdup_printf ("u\tbig%u", i);
      now += 1000;
      for (int k = 0; k < 4; k++)
        auth_throttle_add (t, key, now);
    }
  g_assert_cmpuint (auth_throttle_count (t, "u\tvictim", now), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/auth/throttle/count", test_count);
  g_test_add_func ("/auth/throttle/expiry", test_expiry);
  g_test_add_func ("/auth/throttle/cap", test_cap);
  g_test_add_func ("/auth/throttle/cap-expired-first", test_cap_expired_first);
  g_test_add_func ("/auth/throttle/cap-costly", test_cap_costly);
  return g_test_run ();
}
