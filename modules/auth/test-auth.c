/* test-auth: the auth module's failure table (throttle.c) on a made-up
 * clock — counts, expiry on lookup and by sweep, the cap, and an eviction
 * policy a flood of fresh keys cannot turn against a victim's counts —
 * and its known addresses and account lines. */
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

/* The last AUTH_KNOWN_PER_ACCOUNT addresses per account, the least
 * recently logged-in account evicted when full. */
static void
test_known (void)
{
  g_autoptr(AuthKnown) k = auth_known_new (3);

  for (int i = 0; i < AUTH_KNOWN_PER_ACCOUNT + 1; i++)
    {
      g_autofree char *addr = g_strdup_printf ("10.0.0.%d", i);
      auth_known_add (k, "alice", addr);
    }
  g_assert_false (auth_known_has (k, "alice", "10.0.0.0"));   /* fell off */
  for (int i = 1; i < AUTH_KNOWN_PER_ACCOUNT + 1; i++)
    {
      g_autofree char *addr = g_strdup_printf ("10.0.0.%d", i);
      g_assert_true (auth_known_has (k, "alice", addr));
    }
  /* Logging in again from the oldest keeps it. */
  auth_known_add (k, "alice", "10.0.0.1");
  auth_known_add (k, "alice", "10.0.0.9");
  g_assert_true (auth_known_has (k, "alice", "10.0.0.1"));
  g_assert_false (auth_known_has (k, "alice", "10.0.0.2"));
  g_assert_false (auth_known_has (k, "bob", "10.0.0.1"));
  /* alice is the least recent after bob and carol, then refreshed. */
  auth_known_add (k, "bob", "10.0.1.1");
  auth_known_add (k, "carol", "10.0.1.2");
  auth_known_add (k, "alice", "10.0.0.1");
  auth_known_add (k, "dave", "10.0.1.3");
  g_assert_cmpuint (auth_known_size (k), ==, 3);
  g_assert_false (auth_known_has (k, "bob", "10.0.1.1"));
  g_assert_true (auth_known_has (k, "alice", "10.0.0.1"));
  g_assert_true (auth_known_has (k, "dave", "10.0.1.3"));

  g_autoptr(AuthKnown) none = auth_known_new (0);
  auth_known_add (none, "alice", "10.0.0.1");
  g_assert_false (auth_known_has (none, "alice", "10.0.0.1"));
}

static int timers_freed;

static void
count_timer_free (gpointer timer)
{
  timers_freed++;
}

static void
count_item (gpointer item, gpointer data)
{
  (*(int *) data)++;
}

/* Clean items first, each group in order; an item can leave from
 * anywhere; the lines' timers and remaining items are handed back. */
static void
test_lines (void)
{
  AuthLines *l = auth_lines_new (count_timer_free);
  AuthLine *line = auth_lines_get (l, "alice", TRUE);
  int items[6], left = 0;
  GList *links[6];

  g_assert_null (auth_lines_get (l, "bob", FALSE));
  g_assert_true (auth_lines_get (l, "alice", FALSE) == line);
  line->timer = &items[0];
  for (int i = 0; i < 6; i++)
    links[i] = auth_line_push (line, &items[i], i % 2 == 0);   /* 0, 2, 4 clean */
  g_assert_cmpuint (auth_line_waiting (line), ==, 6);
  auth_line_unlink (line, links[2], TRUE);
  auth_line_unlink (line, links[3], FALSE);
  g_assert_true (auth_line_pop (line) == &items[0]);
  g_assert_true (auth_line_pop (line) == &items[4]);
  g_assert_true (auth_line_pop (line) == &items[1]);
  g_assert_cmpuint (auth_line_waiting (line), ==, 1);
  auth_lines_get (l, "bob", TRUE);
  g_assert_cmpuint (auth_lines_size (l), ==, 2);
  auth_lines_drop (l, auth_lines_get (l, "bob", FALSE));
  g_assert_cmpuint (auth_lines_size (l), ==, 1);
  auth_lines_free (l, count_item, &left);
  g_assert_cmpint (left, ==, 1);
  g_assert_cmpint (timers_freed, ==, 1);
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
  g_test_add_func ("/auth/throttle/known", test_known);
  g_test_add_func ("/auth/throttle/lines", test_lines);
  return g_test_run ();
}
