/* test-blocklist: the blocking module's block list (modules/blocking/
 * blocklist.c) — XEP-0191 §3 matching, and its cost: testing a sender
 * takes a bounded number of hash lookups whatever the list's length, and
 * filling and emptying a list is linear.  Costs are counted in lookups,
 * never timed. */
#include "blocklist.h"

static MynaJid *
jid (const char *s)
{
  MynaJid *j = myna_jid_parse (s, NULL);

  g_assert_nonnull (j);
  return j;
}

static void
add (BlockList *list, const char *s)
{
  g_autoptr(MynaJid) j = jid (s);

  g_assert_true (block_list_add (list, j));
}

static gboolean
matches (BlockList *list, const char *s)
{
  g_autoptr(MynaJid) j = jid (s);

  return block_list_matches (list, j);
}

/* XEP-0191 §3 (as XEP-0016 §2.1): each form of item and what it covers. */
static void
test_matching (void)
{
  static const struct {
    const char *item, *jid;
    gboolean    blocked;
  } cases[] = {
    { "bob@example.org", "bob@example.org", TRUE },
    { "bob@example.org", "bob@example.org/phone", TRUE },
    { "bob@example.org", "Bob@EXAMPLE.org/phone", TRUE },
    { "bob@example.org", "bobby@example.org", FALSE },
    { "bob@example.org", "example.org", FALSE },
    { "bob@example.org", "bob@sub.example.org", FALSE },
    { "bob@example.org/phone", "bob@example.org/phone", TRUE },
    { "bob@example.org/phone", "bob@example.org/desk", FALSE },
    { "bob@example.org/phone", "bob@example.org", FALSE },
    { "example.org/bot", "example.org/bot", TRUE },
    { "example.org/bot", "bob@example.org/bot", FALSE },
    { "example.org/bot", "example.org", FALSE },
    { "example.org", "example.org", TRUE },
    { "example.org", "bob@example.org/phone", TRUE },
    { "example.org", "muc.example.org", TRUE },
    { "example.org", "room@muc.example.org/nick", TRUE },
    { "example.org", "badexample.org", FALSE },
    { "example.org", "example.org.evil", FALSE },
    { "muc.example.org", "example.org", FALSE },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(BlockList) list = block_list_new ();

      add (list, cases[i].item);
      g_test_message ("%s blocks %s: %d", cases[i].item, cases[i].jid, cases[i].blocked);
      g_assert_cmpint (matches (list, cases[i].jid), ==, cases[i].blocked);
    }
}

static void
test_set (void)
{
  g_autoptr(BlockList) list = block_list_new ();
  g_autoptr(MynaJid) bob = jid ("bob@example.org");
  g_autoptr(MynaJid) bob_again = jid ("BOB@example.org");
  g_autoptr(GPtrArray) items = NULL, all = NULL;

  g_assert_false (matches (list, "bob@example.org"));
  g_assert_true (block_list_add (list, bob));
  g_assert_false (block_list_add (list, bob_again));
  add (list, "example.com");
  add (list, "alice@example.org/desk");
  g_assert_cmpuint (block_list_size (list), ==, 3);
  items = block_list_items (list);
  g_assert_cmpuint (items->len, ==, 3);
  g_assert_cmpstr (myna_jid_to_string (items->pdata[0]), ==, "alice@example.org/desk");
  g_assert_cmpstr (myna_jid_to_string (items->pdata[1]), ==, "bob@example.org");
  g_assert_cmpstr (myna_jid_to_string (items->pdata[2]), ==, "example.com");
  g_assert_true (block_list_remove (list, bob_again));
  g_assert_false (block_list_remove (list, bob));
  g_assert_false (matches (list, "bob@example.org"));
  all = block_list_take_all (list);
  g_assert_cmpuint (all->len, ==, 2);
  g_assert_cmpuint (block_list_size (list), ==, 0);
  g_assert_false (matches (list, "x.example.com"));
}

/* A list of N JIDs: filling it, testing senders and emptying it one by
 * one cost lookups linear in N overall and bounded per sender (one per
 * form and per domain label), where a walk over the list costs N per
 * sender and N²/2 to empty it. */
static void
test_cost (void)
{
  const guint n = 50000;
  g_autoptr(BlockList) list = block_list_new ();
  g_autoptr(GPtrArray) jids = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_jid_unref);
  guint64 before;

  for (guint i = 0; i < n; i++)
    {
      g_autofree char *s = g_strdup_printf ("spam%u@bots%u.example.net", i, i % 97);
      g_ptr_array_add (jids, jid (s));
    }
  before = block_list_get_lookups (list);
  for (guint i = 0; i < n; i++)
    g_assert_true (block_list_add (list, jids->pdata[i]));
  g_assert_cmpuint (block_list_get_lookups (list) - before, <=, (guint64) n);

  before = block_list_get_lookups (list);
  g_assert_true (matches (list, "spam4242@bots71.example.net/x"));
  g_assert_false (matches (list, "friend@a.b.c.example.net/home"));
  /* At most: full, bare, then 6 domain labels. */
  g_assert_cmpuint (block_list_get_lookups (list) - before, <=, 2 + 8);

  before = block_list_get_lookups (list);
  for (guint i = 0; i < n; i++)
    g_assert_true (block_list_remove (list, jids->pdata[i]));
  g_assert_cmpuint (block_list_get_lookups (list) - before, <=, (guint64) n);
  g_assert_cmpuint (block_list_size (list), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/blocklist/matching", test_matching);
  g_test_add_func ("/blocklist/set", test_set);
  g_test_add_func ("/blocklist/cost", test_cost);
  return g_test_run ();
}
