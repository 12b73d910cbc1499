/* test-store.c: MynaClientStore — every call, the dedupe of received
 * messages, the moves of an outgoing message's state, persistence across
 * reopening, the schema-version refusal, the file's mode, and broken
 * files. */
#include <myna/client/myna-client.h>

#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>

/* A temp folder per test, removed after it. */
typedef struct {
  char *dir;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer unused)
{
  g_autoptr (GError) error = NULL;

  f->dir = g_dir_make_tmp ("test-store-XXXXXX", &error);
  g_assert_no_error (error);
}

/* Removes @path and everything below it. */
static void
rm_rf (const char *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  if (dir != NULL)
    while ((name = g_dir_read_name (dir)) != NULL)
      {
        g_autofree char *child = g_build_filename (path, name, NULL);
        rm_rf (child);
      }
  g_remove (path);
}

static void
fixture_teardown (Fixture *f, gconstpointer unused)
{
  rm_rf (f->dir);
  g_free (f->dir);
}

static MynaClientStore *
open_memory (void)
{
  g_autoptr (GError) error = NULL;
  MynaClientStore *store = myna_client_store_new (":memory:", &error);

  g_assert_no_error (error);
  g_assert_nonnull (store);
  return store;
}

/* A message record; @id, @peer and @body are copied. */
static MynaClientMessage *
message_new (const char *id, const char *peer, const char *body, gint64 timestamp)
{
  MynaClientMessage *m = g_new0 (MynaClientMessage, 1);

  m->id = g_strdup (id);
  m->peer = g_strdup (peer);
  m->body = g_strdup (body);
  m->type = g_strdup ("chat");
  m->timestamp = timestamp;
  return m;
}

static MynaClientRosterItem *
roster_item_new (const char *jid, const char *name, const char *subscription,
                 const char *const *groups)
{
  MynaClientRosterItem *item = g_new0 (MynaClientRosterItem, 1);

  item->jid = g_strdup (jid);
  item->name = g_strdup (name);
  item->subscription = g_strdup (subscription);
  item->groups = g_strdupv ((char **) groups);
  return item;
}

static void
test_store_memory (void)
{
  g_autoptr (MynaClientStore) store = open_memory ();

  g_assert_cmpstr (myna_client_store_get_path (store), ==, ":memory:");
  g_assert_false (myna_client_store_get_account (store, NULL, NULL));
}

static void
test_store_account (void)
{
  g_autoptr (MynaClientStore) store = open_memory ();
  g_autoptr (GError) error = NULL;
  g_autofree char *jid = NULL;
  g_autofree char *password = NULL;

  g_assert_false (myna_client_store_get_account (store, &jid, &password));
  g_assert_null (jid);
  g_assert_true (myna_client_store_set_account (store, "alice@example.org", "one", &error));
  g_assert_no_error (error);
  g_assert_true (myna_client_store_get_account (store, &jid, &password));
  g_assert_cmpstr (jid, ==, "alice@example.org");
  g_assert_cmpstr (password, ==, "one");
  g_clear_pointer (&jid, g_free);
  g_clear_pointer (&password, g_free);

  /* One account: a second set replaces it. */
  g_assert_true (myna_client_store_set_account (store, "bob@example.org", "two", &error));
  g_assert_true (myna_client_store_get_account (store, &jid, NULL));
  g_assert_cmpstr (jid, ==, "bob@example.org");

  g_assert_true (myna_client_store_clear_account (store, &error));
  g_assert_no_error (error);
  g_assert_false (myna_client_store_get_account (store, NULL, NULL));
  /* Clearing nothing is fine. */
  g_assert_true (myna_client_store_clear_account (store, &error));
}

static void
test_store_values (void)
{
  g_autoptr (MynaClientStore) store = open_memory ();
  g_autoptr (GError) error = NULL;
  g_autofree char *v1 = NULL;
  g_autofree char *v2 = NULL;
  g_autofree char *v3 = NULL;

  g_assert_null (myna_client_store_get_value (store, "k"));
  g_assert_true (myna_client_store_set_value (store, "k", "a", &error));
  g_assert_no_error (error);
  v1 = myna_client_store_get_value (store, "k");
  g_assert_cmpstr (v1, ==, "a");
  g_assert_true (myna_client_store_set_value (store, "k", "b", &error));
  v2 = myna_client_store_get_value (store, "k");
  g_assert_cmpstr (v2, ==, "b");
  g_assert_true (myna_client_store_set_value (store, "k", "", &error));
  v3 = myna_client_store_get_value (store, "k");
  g_assert_cmpstr (v3, ==, "");
  g_assert_true (myna_client_store_set_value (store, "k", NULL, &error));
  g_assert_null (myna_client_store_get_value (store, "k"));
  /* Deleting an unset key is fine. */
  g_assert_true (myna_client_store_set_value (store, "nothing", NULL, &error));
  g_assert_no_error (error);
}

/* clear_account takes the credentials, the stream-management state and the
 * roster version; messages, notifications, the roster items and other
 * settings stay. */
static void
test_store_clear_account (void)
{
  g_autoptr (MynaClientStore) store = open_memory ();
  g_autoptr (GError) error = NULL;
  g_autoptr (MynaClientMessage) m = message_new ("m1", "bob@example.org", "hi", 1);
  g_autoptr (MynaClientRosterItem) item = roster_item_new ("bob@example.org", NULL, "both", NULL);
  MynaClientNotification n = { .id = (char *) "n1", .title = (char *) "t" };
  g_autoptr (GPtrArray) messages = NULL;
  g_autoptr (GPtrArray) notifications = NULL;
  g_autoptr (GPtrArray) roster = NULL;
  g_autofree char *other = NULL;
  g_autofree char *upper = NULL;

  g_assert_true (myna_client_store_set_account (store, "alice@example.org", "pw", &error));
  g_assert_true (myna_client_store_set_value (store, "sm.id", "abc", &error));
  g_assert_true (myna_client_store_set_value (store, "sm.location", "host:5222", &error));
  g_assert_true (myna_client_store_set_value (store, "sm.in_h", "7", &error));
  g_assert_true (myna_client_store_set_value (store, "smx", "stays", &error));
  g_assert_true (myna_client_store_set_value (store, "SM.up", "stays", &error));
  g_assert_true (myna_client_store_update_roster_item (store, item, "v5", &error));
  g_assert_true (myna_client_store_add_outgoing (store, m, &error));
  g_assert_true (myna_client_store_add_incoming (store, m, "k1", &error));
  g_assert_true (myna_client_store_add_notification (store, &n, &error));
  g_assert_no_error (error);

  g_assert_true (myna_client_store_clear_account (store, &error));
  g_assert_no_error (error);

  g_assert_false (myna_client_store_get_account (store, NULL, NULL));
  g_assert_null (myna_client_store_get_value (store, "sm.id"));
  g_assert_null (myna_client_store_get_value (store, "sm.location"));
  g_assert_null (myna_client_store_get_value (store, "sm.in_h"));
  g_assert_null (myna_client_store_get_roster_version (store));
  other = myna_client_store_get_value (store, "smx");
  g_assert_cmpstr (other, ==, "stays");
  upper = myna_client_store_get_value (store, "SM.up");
  g_assert_cmpstr (upper, ==, "stays");
  messages = myna_client_store_get_messages (store, NULL, 0);
  g_assert_cmpuint (messages->len, ==, 2);
  notifications = myna_client_store_get_notifications (store);
  g_assert_cmpuint (notifications->len, ==, 1);
  roster = myna_client_store_get_roster (store);
  g_assert_cmpuint (roster->len, ==, 1);
}

static void
test_store_roster (void)
{
  g_autoptr (MynaClientStore) store = open_memory ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) items = g_ptr_array_new_with_free_func ((GDestroyNotify) myna_client_roster_item_free);
  g_autoptr (GPtrArray) got = NULL;
  g_autofree char *ver = NULL;
  const char *const groups[] = { "Friends", "Work mates", NULL };
  const MynaClientRosterItem *i;

  g_assert_null (myna_client_store_get_roster_version (store));
  got = myna_client_store_get_roster (store);
  g_assert_cmpuint (got->len, ==, 0);
  g_clear_pointer (&got, g_ptr_array_unref);

  g_ptr_array_add (items, roster_item_new ("zed@example.org", "Zed", "to", NULL));
  g_ptr_array_add (items, roster_item_new ("amy@example.org", "Amy", "both", groups));
  g_ptr_array_add (items, roster_item_new ("kim@example.org", NULL, "none", NULL));
  ((MynaClientRosterItem *) items->pdata[2])->ask = g_strdup ("subscribe");
  g_assert_true (myna_client_store_replace_roster (store, items, "v1", &error));
  g_assert_no_error (error);

  ver = myna_client_store_get_roster_version (store);
  g_assert_cmpstr (ver, ==, "v1");
  g_clear_pointer (&ver, g_free);
  got = myna_client_store_get_roster (store);
  g_assert_cmpuint (got->len, ==, 3);
  /* Sorted by JID. */
  i = got->pdata[0];
  g_assert_cmpstr (i->jid, ==, "amy@example.org");
  g_assert_cmpstr (i->name, ==, "Amy");
  g_assert_cmpstr (i->subscription, ==, "both");
  g_assert_null (i->ask);
  g_assert_nonnull (i->groups);
  g_assert_cmpuint (g_strv_length (i->groups), ==, 2);
  g_assert_cmpstr (i->groups[0], ==, "Friends");
  g_assert_cmpstr (i->groups[1], ==, "Work mates");
  i = got->pdata[1];
  g_assert_cmpstr (i->jid, ==, "kim@example.org");
  g_assert_null (i->name);
  g_assert_cmpstr (i->ask, ==, "subscribe");
  g_assert_nonnull (i->groups);
  g_assert_cmpuint (g_strv_length (i->groups), ==, 0);
  i = got->pdata[2];
  g_assert_cmpstr (i->jid, ==, "zed@example.org");
  g_assert_cmpstr (i->subscription, ==, "to");
  g_clear_pointer (&got, g_ptr_array_unref);

  /* A push: change one, add one, remove one; the version follows. */
  {
    g_autoptr (MynaClientRosterItem) changed = roster_item_new ("zed@example.org", "Zedd", "both", groups);
    g_autoptr (MynaClientRosterItem) added = roster_item_new ("bea@example.org", NULL, "none", NULL);
    g_autoptr (MynaClientRosterItem) removed = roster_item_new ("kim@example.org", NULL, "remove", NULL);

    g_assert_true (myna_client_store_update_roster_item (store, changed, "v2", &error));
    g_assert_true (myna_client_store_update_roster_item (store, added, "v3", &error));
    g_assert_true (myna_client_store_update_roster_item (store, removed, "v4", &error));
    /* Removing one that is not there is fine; no version keeps it. */
    g_assert_true (myna_client_store_update_roster_item (store, removed, NULL, &error));
    g_assert_no_error (error);
  }
  ver = myna_client_store_get_roster_version (store);
  g_assert_cmpstr (ver, ==, "v4");
  g_clear_pointer (&ver, g_free);
  got = myna_client_store_get_roster (store);
  g_assert_cmpuint (got->len, ==, 3);
  g_assert_cmpstr (((MynaClientRosterItem *) got->pdata[0])->jid, ==, "amy@example.org");
  g_assert_cmpstr (((MynaClientRosterItem *) got->pdata[1])->jid, ==, "bea@example.org");
  i = got->pdata[2];
  g_assert_cmpstr (i->jid, ==, "zed@example.org");
  g_assert_cmpstr (i->name, ==, "Zedd");
  g_assert_cmpstr (i->subscription, ==, "both");
  g_assert_cmpuint (g_strv_length (i->groups), ==, 2);
  g_clear_pointer (&got, g_ptr_array_unref);

  /* A full replace drops what is not in it; no version clears it. */
  g_ptr_array_set_size (items, 0);
  g_ptr_array_add (items, roster_item_new ("new@example.org", NULL, "from", NULL));
  g_assert_true (myna_client_store_replace_roster (store, items, NULL, &error));
  g_assert_no_error (error);
  g_assert_null (myna_client_store_get_roster_version (store));
  got = myna_client_store_get_roster (store);
  g_assert_cmpuint (got->len, ==, 1);
  g_assert_cmpstr (((MynaClientRosterItem *) got->pdata[0])->jid, ==, "new@example.org");
  g_clear_pointer (&got, g_ptr_array_unref);

  /* An empty roster. */
  g_ptr_array_set_size (items, 0);
  g_assert_true (myna_client_store_replace_roster (store, items, "v9", &error));
  got = myna_client_store_get_roster (store);
  g_assert_cmpuint (got->len, ==, 0);
}

static void
test_store_outgoing (void)
{
  g_autoptr (MynaClientStore) store = open_memory ();
  g_autoptr (GError) error = NULL;
  g_autoptr (MynaClientMessage) m1 = message_new ("o1", "bob@example.org", "one", 100);
  g_autoptr (MynaClientMessage) m2 = message_new ("o2", "bob@example.org", "two", 50);
  g_autoptr (MynaClientMessage) m3 = message_new ("o3", "eve@example.org", "three", 0);
  g_autoptr (MynaClientMessage) got = NULL;
  g_autoptr (GPtrArray) pending = NULL;
  gint64 before = g_get_real_time ();

  /* Whatever state it comes with, it is stored QUEUED. */
  m1->state = MYNA_CLIENT_MESSAGE_ACKED;
  m1->stanza_id = g_strdup ("sid");
  g_assert_true (myna_client_store_add_outgoing (store, m1, &error));
  g_assert_true (myna_client_store_add_outgoing (store, m2, &error));
  g_assert_true (myna_client_store_add_outgoing (store, m3, &error));
  g_assert_no_error (error);

  got = myna_client_store_get_message (store, MYNA_CLIENT_DIRECTION_OUT, "o1");
  g_assert_nonnull (got);
  g_assert_cmpstr (got->id, ==, "o1");
  g_assert_cmpint (got->direction, ==, MYNA_CLIENT_DIRECTION_OUT);
  g_assert_cmpstr (got->peer, ==, "bob@example.org");
  g_assert_cmpstr (got->body, ==, "one");
  g_assert_cmpstr (got->type, ==, "chat");
  g_assert_cmpstr (got->stanza_id, ==, "sid");
  g_assert_cmpint (got->state, ==, MYNA_CLIENT_MESSAGE_QUEUED);
  g_assert_cmpint (got->timestamp, ==, 100);
  g_clear_pointer (&got, myna_client_message_free);
  /* No timestamp: now. */
  got = myna_client_store_get_message (store, MYNA_CLIENT_DIRECTION_OUT, "o3");
  g_assert_cmpint (got->timestamp, >=, before);
  g_clear_pointer (&got, myna_client_message_free);
  /* Not an incoming one. */
  g_assert_null (myna_client_store_get_message (store, MYNA_CLIENT_DIRECTION_IN, "o1"));
  g_assert_null (myna_client_store_get_message (store, MYNA_CLIENT_DIRECTION_OUT, "nope"));

  /* Outgoing ids are unique. */
  g_assert_false (myna_client_store_add_outgoing (store, m1, &error));
  g_assert_error (error, MYNA_CLIENT_STORE_ERROR, MYNA_CLIENT_STORE_ERROR_FAILED);
  g_clear_error (&error);

  /* Pending: QUEUED and SENT, in the order they were stored. */
  pending = myna_client_store_get_pending (store);
  g_assert_cmpuint (pending->len, ==, 3);
  g_assert_cmpstr (((MynaClientMessage *) pending->pdata[0])->id, ==, "o1");
  g_assert_cmpstr (((MynaClientMessage *) pending->pdata[1])->id, ==, "o2");
  g_assert_cmpstr (((MynaClientMessage *) pending->pdata[2])->id, ==, "o3");
  g_clear_pointer (&pending, g_ptr_array_unref);

  g_assert_true (myna_client_store_set_message_state (store, "o1", MYNA_CLIENT_MESSAGE_SENT, &error));
  g_assert_true (myna_client_store_set_message_state (store, "o2", MYNA_CLIENT_MESSAGE_ACKED, &error));
  g_assert_no_error (error);
  pending = myna_client_store_get_pending (store);
  g_assert_cmpuint (pending->len, ==, 2);
  g_assert_cmpstr (((MynaClientMessage *) pending->pdata[0])->id, ==, "o1");
  g_assert_cmpint (((MynaClientMessage *) pending->pdata[0])->state, ==, MYNA_CLIENT_MESSAGE_SENT);
  g_assert_cmpstr (((MynaClientMessage *) pending->pdata[1])->id, ==, "o3");
}

/* Asserts the outgoing message @id is in @state. */
static void
assert_state (MynaClientStore *store, const char *id, MynaClientMessageState state)
{
  g_autoptr (MynaClientMessage) m = myna_client_store_get_message (store, MYNA_CLIENT_DIRECTION_OUT, id);

  g_assert_nonnull (m);
  g_assert_cmpint (m->state, ==, state);
}

/* Returns what set_message_state returned, checking it set no error. */
static gboolean
move (MynaClientStore *store, const char *id, MynaClientMessageState state)
{
  g_autoptr (GError) error = NULL;
  gboolean changed = myna_client_store_set_message_state (store, id, state, &error);

  g_assert_no_error (error);
  return changed;
}

static void
test_store_states (void)
{
  g_autoptr (MynaClientStore) store = open_memory ();
  g_autoptr (GError) error = NULL;
  const char *ids[] = { "a", "b", "c", "d" };

  for (guint i = 0; i < G_N_ELEMENTS (ids); i++)
    {
      g_autoptr (MynaClientMessage) m = message_new (ids[i], "bob@example.org", "x", 1);
      g_assert_true (myna_client_store_add_outgoing (store, m, &error));
      g_assert_no_error (error);
    }

  /* a: forward, back from SENT to QUEUED, forward again, then final. */
  g_assert_false (move (store, "a", MYNA_CLIENT_MESSAGE_QUEUED));   /* no change */
  g_assert_true (move (store, "a", MYNA_CLIENT_MESSAGE_SENT));
  g_assert_false (move (store, "a", MYNA_CLIENT_MESSAGE_SENT));
  g_assert_true (move (store, "a", MYNA_CLIENT_MESSAGE_QUEUED));
  assert_state (store, "a", MYNA_CLIENT_MESSAGE_QUEUED);
  g_assert_true (move (store, "a", MYNA_CLIENT_MESSAGE_SENT));
  g_assert_true (move (store, "a", MYNA_CLIENT_MESSAGE_ACKED));
  g_assert_false (move (store, "a", MYNA_CLIENT_MESSAGE_QUEUED));
  g_assert_false (move (store, "a", MYNA_CLIENT_MESSAGE_SENT));
  assert_state (store, "a", MYNA_CLIENT_MESSAGE_ACKED);
  g_assert_true (move (store, "a", MYNA_CLIENT_MESSAGE_DELIVERED));
  g_assert_false (move (store, "a", MYNA_CLIENT_MESSAGE_ACKED));
  g_assert_false (move (store, "a", MYNA_CLIENT_MESSAGE_FAILED));
  g_assert_false (move (store, "a", MYNA_CLIENT_MESSAGE_QUEUED));
  assert_state (store, "a", MYNA_CLIENT_MESSAGE_DELIVERED);

  /* b: a receipt before the server's ack; the ack is then ignored. */
  g_assert_true (move (store, "b", MYNA_CLIENT_MESSAGE_SENT));
  g_assert_true (move (store, "b", MYNA_CLIENT_MESSAGE_DELIVERED));
  g_assert_false (move (store, "b", MYNA_CLIENT_MESSAGE_ACKED));
  assert_state (store, "b", MYNA_CLIENT_MESSAGE_DELIVERED);

  /* c: an error after the ack: FAILED, which is final. */
  g_assert_true (move (store, "c", MYNA_CLIENT_MESSAGE_SENT));
  g_assert_true (move (store, "c", MYNA_CLIENT_MESSAGE_ACKED));
  g_assert_true (move (store, "c", MYNA_CLIENT_MESSAGE_FAILED));
  g_assert_false (move (store, "c", MYNA_CLIENT_MESSAGE_DELIVERED));
  g_assert_false (move (store, "c", MYNA_CLIENT_MESSAGE_QUEUED));
  assert_state (store, "c", MYNA_CLIENT_MESSAGE_FAILED);

  /* d: failed straight from QUEUED. */
  g_assert_true (move (store, "d", MYNA_CLIENT_MESSAGE_FAILED));
  g_assert_false (move (store, "d", MYNA_CLIENT_MESSAGE_SENT));
  assert_state (store, "d", MYNA_CLIENT_MESSAGE_FAILED);

  /* Unknown ids and received messages do not move. */
  g_assert_false (move (store, "unknown", MYNA_CLIENT_MESSAGE_SENT));
  {
    g_autoptr (MynaClientMessage) in = message_new ("e", "bob@example.org", "x", 1);
    g_autoptr (MynaClientMessage) got = NULL;

    g_assert_true (myna_client_store_add_incoming (store, in, "k", &error));
    g_assert_false (move (store, "e", MYNA_CLIENT_MESSAGE_SENT));
    got = myna_client_store_get_message (store, MYNA_CLIENT_DIRECTION_IN, "e");
    g_assert_cmpint (got->state, ==, MYNA_CLIENT_MESSAGE_RECEIVED);
  }
}

static void
test_store_incoming (void)
{
  g_autoptr (MynaClientStore) store = open_memory ();
  g_autoptr (GError) error = NULL;
  g_autoptr (MynaClientMessage) m = message_new ("i1", "bob@example.org", "hello", 10);
  g_autoptr (MynaClientMessage) got = NULL;
  g_autoptr (GPtrArray) all = NULL;

  m->stanza_id = g_strdup ("server-1");
  m->state = MYNA_CLIENT_MESSAGE_QUEUED;
  g_assert_true (myna_client_store_add_incoming (store, m, "server-1", &error));
  g_assert_no_error (error);
  /* The same message again (a re-send after a resumption): a duplicate,
   * not an error, even under another stanza id. */
  g_assert_false (myna_client_store_add_incoming (store, m, "server-1", &error));
  g_assert_no_error (error);
  g_free (m->id);
  m->id = g_strdup ("i1-again");
  g_assert_false (myna_client_store_add_incoming (store, m, "server-1", &error));
  g_assert_no_error (error);
  /* The same key from another peer is another message. */
  g_free (m->peer);
  m->peer = g_strdup ("eve@example.org");
  g_assert_true (myna_client_store_add_incoming (store, m, "server-1", &error));
  /* Another key from the first peer too. */
  g_free (m->peer);
  m->peer = g_strdup ("bob@example.org");
  g_free (m->id);
  m->id = g_strdup ("i2");
  g_assert_true (myna_client_store_add_incoming (store, m, "server-2", &error));
  /* A type-less message without an id. */
  {
    g_autoptr (MynaClientMessage) bare = message_new (NULL, "bob@example.org", "no id", 11);
    g_clear_pointer (&bare->type, g_free);
    g_assert_true (myna_client_store_add_incoming (store, bare, "noid:x", &error));
    g_assert_false (myna_client_store_add_incoming (store, bare, "noid:x", &error));
  }
  g_assert_no_error (error);

  got = myna_client_store_get_message (store, MYNA_CLIENT_DIRECTION_IN, "i1");
  g_assert_nonnull (got);
  g_assert_cmpint (got->direction, ==, MYNA_CLIENT_DIRECTION_IN);
  g_assert_cmpint (got->state, ==, MYNA_CLIENT_MESSAGE_RECEIVED);
  g_assert_cmpstr (got->peer, ==, "bob@example.org");
  g_assert_cmpstr (got->body, ==, "hello");
  g_assert_cmpstr (got->stanza_id, ==, "server-1");
  g_assert_cmpint (got->timestamp, ==, 10);
  /* An incoming and an outgoing message may share an id. */
  g_assert_null (myna_client_store_get_message (store, MYNA_CLIENT_DIRECTION_OUT, "i1"));
  g_free (m->id);
  m->id = g_strdup ("i1");
  g_assert_true (myna_client_store_add_outgoing (store, m, &error));
  g_assert_no_error (error);

  all = myna_client_store_get_messages (store, NULL, 0);
  g_assert_cmpuint (all->len, ==, 5);
  /* The latest one (by timestamp) is the one without an id. */
  g_assert_cmpstr (((MynaClientMessage *) all->pdata[4])->id, ==, "");
  g_assert_cmpstr (((MynaClientMessage *) all->pdata[4])->type, ==, "normal");
}

static void
test_store_messages (void)
{
  g_autoptr (MynaClientStore) store = open_memory ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) list = NULL;
  /* Stored out of time order (a late, delayed one comes last). */
  struct { const char *id; const char *peer; gint64 ts; gboolean out; } rows[] = {
    { "b1", "bob@example.org", 20, FALSE },
    { "e1", "eve@example.org", 25, FALSE },
    { "b2", "bob@example.org", 30, TRUE },
    { "b3", "bob@example.org", 40, FALSE },
    { "b0", "bob@example.org", 10, FALSE },
  };

  for (guint i = 0; i < G_N_ELEMENTS (rows); i++)
    {
      g_autoptr (MynaClientMessage) m = message_new (rows[i].id, rows[i].peer, "x", rows[i].ts);
      if (rows[i].out)
        g_assert_true (myna_client_store_add_outgoing (store, m, &error));
      else
        g_assert_true (myna_client_store_add_incoming (store, m, rows[i].id, &error));
      g_assert_no_error (error);
    }

  list = myna_client_store_get_messages (store, NULL, 0);
  g_assert_cmpuint (list->len, ==, 5);
  g_assert_cmpstr (((MynaClientMessage *) list->pdata[0])->id, ==, "b0");
  g_assert_cmpstr (((MynaClientMessage *) list->pdata[4])->id, ==, "b3");
  g_clear_pointer (&list, g_ptr_array_unref);

  list = myna_client_store_get_messages (store, "bob@example.org", 0);
  g_assert_cmpuint (list->len, ==, 4);
  g_assert_cmpstr (((MynaClientMessage *) list->pdata[0])->id, ==, "b0");
  g_assert_cmpstr (((MynaClientMessage *) list->pdata[1])->id, ==, "b1");
  g_assert_cmpstr (((MynaClientMessage *) list->pdata[2])->id, ==, "b2");
  g_assert_cmpint (((MynaClientMessage *) list->pdata[2])->direction, ==, MYNA_CLIENT_DIRECTION_OUT);
  g_assert_cmpstr (((MynaClientMessage *) list->pdata[3])->id, ==, "b3");
  g_clear_pointer (&list, g_ptr_array_unref);

  /* The newest two, oldest first. */
  list = myna_client_store_get_messages (store, "bob@example.org", 2);
  g_assert_cmpuint (list->len, ==, 2);
  g_assert_cmpstr (((MynaClientMessage *) list->pdata[0])->id, ==, "b2");
  g_assert_cmpstr (((MynaClientMessage *) list->pdata[1])->id, ==, "b3");
  g_clear_pointer (&list, g_ptr_array_unref);

  list = myna_client_store_get_messages (store, "nobody@example.org", 0);
  g_assert_cmpuint (list->len, ==, 0);
}

static void
test_store_notifications (void)
{
  g_autoptr (MynaClientStore) store = open_memory ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) list = NULL;
  MynaClientNotification n1 = {
    .id = (char *) "n1", .from = (char *) "push.example.org", .api_key = (char *) "key",
    .title = (char *) "Title", .message = (char *) "Text", .uri = (char *) "https://x/",
    .timestamp = 5,
  };
  MynaClientNotification n2 = { .id = (char *) "n2" };
  const MynaClientNotification *got;
  gint64 before = g_get_real_time ();

  g_assert_true (myna_client_store_add_notification (store, &n1, &error));
  g_assert_true (myna_client_store_add_notification (store, &n2, &error));
  g_assert_no_error (error);
  /* Unique by id. */
  n1.title = (char *) "Changed";
  g_assert_false (myna_client_store_add_notification (store, &n1, &error));
  g_assert_no_error (error);

  list = myna_client_store_get_notifications (store);
  g_assert_cmpuint (list->len, ==, 2);
  got = list->pdata[0];
  g_assert_cmpstr (got->id, ==, "n1");
  g_assert_cmpstr (got->from, ==, "push.example.org");
  g_assert_cmpstr (got->api_key, ==, "key");
  g_assert_cmpstr (got->title, ==, "Title");
  g_assert_cmpstr (got->message, ==, "Text");
  g_assert_cmpstr (got->uri, ==, "https://x/");
  g_assert_cmpint (got->timestamp, ==, 5);
  got = list->pdata[1];
  g_assert_cmpstr (got->id, ==, "n2");
  g_assert_null (got->title);
  g_assert_null (got->uri);
  g_assert_cmpint (got->timestamp, >=, before);
}

/* Everything written is there after closing and opening again; the file
 * is 0600 in a 0700 folder made for it, whatever the umask; WAL is on. */
static void
test_store_persistence (Fixture *f, gconstpointer unused)
{
  g_autofree char *path = g_build_filename (f->dir, "a", "b", "store.db", NULL);
  g_autofree char *folder = g_path_get_dirname (path);
  g_autoptr (GError) error = NULL;
  g_autoptr (MynaClientStore) store = NULL;
  struct stat st;
  mode_t old_umask;

  old_umask = umask (0);
  store = myna_client_store_new (path, &error);
  umask (old_umask);
  g_assert_no_error (error);
  g_assert_nonnull (store);
  g_assert_cmpstr (myna_client_store_get_path (store), ==, path);

  g_assert_cmpint (g_stat (path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
  g_assert_cmpint (g_stat (folder, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0700);

  {
    g_autoptr (MynaClientMessage) out = message_new ("o1", "bob@example.org", "out", 1);
    g_autoptr (MynaClientMessage) in = message_new ("i1", "bob@example.org", "in", 2);
    g_autoptr (MynaClientRosterItem) item = roster_item_new ("bob@example.org", "Bob", "both", NULL);
    MynaClientNotification n = { .id = (char *) "n1", .title = (char *) "t" };

    g_assert_true (myna_client_store_set_account (store, "alice@example.org", "pw", &error));
    g_assert_true (myna_client_store_set_value (store, "sm.id", "abc", &error));
    g_assert_true (myna_client_store_update_roster_item (store, item, "v1", &error));
    g_assert_true (myna_client_store_add_outgoing (store, out, &error));
    g_assert_true (myna_client_store_set_message_state (store, "o1", MYNA_CLIENT_MESSAGE_SENT, &error));
    g_assert_true (myna_client_store_add_incoming (store, in, "key-1", &error));
    g_assert_true (myna_client_store_add_notification (store, &n, &error));
    g_assert_no_error (error);
  }
  /* The -wal file SQLite made has the database's mode. */
  {
    g_autofree char *wal = g_strconcat (path, "-wal", NULL);
    g_assert_cmpint (g_stat (wal, &st), ==, 0);
    g_assert_cmpint (st.st_mode & 0077, ==, 0);
  }
  g_clear_object (&store);

  /* WAL is recorded in the file's header. */
  {
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;

    g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
    g_assert_cmpint (sqlite3_prepare_v2 (db, "PRAGMA journal_mode", -1, &stmt, NULL), ==, SQLITE_OK);
    g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
    g_assert_cmpstr ((const char *) sqlite3_column_text (stmt, 0), ==, "wal");
    sqlite3_finalize (stmt);
    sqlite3_close (db);
  }

  store = myna_client_store_new (path, &error);
  g_assert_no_error (error);
  {
    g_autofree char *jid = NULL;
    g_autofree char *password = NULL;
    g_autofree char *sm_id = NULL;
    g_autofree char *ver = NULL;
    g_autoptr (GPtrArray) roster = NULL;
    g_autoptr (GPtrArray) pending = NULL;
    g_autoptr (GPtrArray) notifications = NULL;
    g_autoptr (MynaClientMessage) in = message_new ("i1", "bob@example.org", "in", 2);
    g_autoptr (MynaClientMessage) got = NULL;

    g_assert_true (myna_client_store_get_account (store, &jid, &password));
    g_assert_cmpstr (jid, ==, "alice@example.org");
    g_assert_cmpstr (password, ==, "pw");
    sm_id = myna_client_store_get_value (store, "sm.id");
    g_assert_cmpstr (sm_id, ==, "abc");
    ver = myna_client_store_get_roster_version (store);
    g_assert_cmpstr (ver, ==, "v1");
    roster = myna_client_store_get_roster (store);
    g_assert_cmpuint (roster->len, ==, 1);
    g_assert_cmpstr (((MynaClientRosterItem *) roster->pdata[0])->name, ==, "Bob");
    pending = myna_client_store_get_pending (store);
    g_assert_cmpuint (pending->len, ==, 1);
    g_assert_cmpint (((MynaClientMessage *) pending->pdata[0])->state, ==, MYNA_CLIENT_MESSAGE_SENT);
    got = myna_client_store_get_message (store, MYNA_CLIENT_DIRECTION_IN, "i1");
    g_assert_cmpstr (got->body, ==, "in");
    /* The dedupe survives the reopening. */
    g_assert_false (myna_client_store_add_incoming (store, in, "key-1", &error));
    g_assert_no_error (error);
    notifications = myna_client_store_get_notifications (store);
    g_assert_cmpuint (notifications->len, ==, 1);
  }
}

/* Sets the file's PRAGMA @name to @value behind the store's back. */
static void
set_pragma (const char *path, const char *name, int value)
{
  g_autofree char *sql = g_strdup_printf ("PRAGMA %s = %d", name, value);
  sqlite3 *db = NULL;

  g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READWRITE, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, sql, NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);
}

static int
get_user_version (const char *path)
{
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  int version;

  g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "PRAGMA user_version", -1, &stmt, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  version = sqlite3_column_int (stmt, 0);
  sqlite3_finalize (stmt);
  sqlite3_close (db);
  return version;
}

/* A file written by a newer library is refused and left as it is. */
static void
test_store_version (Fixture *f, gconstpointer unused)
{
  g_autofree char *path = g_build_filename (f->dir, "store.db", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (MynaClientStore) store = myna_client_store_new (path, &error);
  int version;

  g_assert_no_error (error);
  g_clear_object (&store);
  version = get_user_version (path);
  g_assert_cmpint (version, >=, 1);

  set_pragma (path, "user_version", version + 1);
  store = myna_client_store_new (path, &error);
  g_assert_null (store);
  g_assert_error (error, MYNA_CLIENT_STORE_ERROR, MYNA_CLIENT_STORE_ERROR_VERSION);
  g_assert_nonnull (strstr (error->message, path));
  g_clear_error (&error);
  g_assert_cmpint (get_user_version (path), ==, version + 1);

  /* Back to the current version: it opens again. */
  set_pragma (path, "user_version", version);
  store = myna_client_store_new (path, &error);
  g_assert_no_error (error);
  g_assert_nonnull (store);
  g_clear_object (&store);

  /* Another application's SQLite file is refused too. */
  set_pragma (path, "application_id", 0x12345678);
  store = myna_client_store_new (path, &error);
  g_assert_null (store);
  g_assert_error (error, MYNA_CLIENT_STORE_ERROR, MYNA_CLIENT_STORE_ERROR_FAILED);
}

/* A file that is not SQLite, or a damaged one, gives an error. */
static void
test_store_corrupt (Fixture *f, gconstpointer unused)
{
  g_autofree char *text = g_build_filename (f->dir, "text.db", NULL);
  g_autofree char *damaged = g_build_filename (f->dir, "damaged.db", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (MynaClientStore) store = NULL;
  g_autofree char *junk = NULL;
  gsize length;

  g_assert_true (g_file_set_contents_full (text, "this is not a database\n", -1,
                                           G_FILE_SET_CONTENTS_NONE, 0600, &error));
  store = myna_client_store_new (text, &error);
  g_assert_null (store);
  g_assert_error (error, MYNA_CLIENT_STORE_ERROR, MYNA_CLIENT_STORE_ERROR_FAILED);
  g_clear_error (&error);

  /* A real store, its pages overwritten after the header. */
  store = myna_client_store_new (damaged, &error);
  g_assert_no_error (error);
  {
    g_autoptr (MynaClientMessage) m = message_new ("o1", "bob@example.org", "x", 1);
    g_assert_true (myna_client_store_add_outgoing (store, m, &error));
  }
  g_clear_object (&store);
  g_assert_true (g_file_get_contents (damaged, &junk, &length, &error));
  g_assert_cmpuint (length, >, 200);
  for (gsize i = 100; i < length; i++)
    junk[i] = (char) (0xa5 ^ i);
  g_assert_true (g_file_set_contents_full (damaged, junk, length, G_FILE_SET_CONTENTS_NONE,
                                           0600, &error));
  {
    g_autofree char *wal = g_strconcat (damaged, "-wal", NULL);
    g_remove (wal);
  }
  store = myna_client_store_new (damaged, &error);
  g_assert_null (store);
  g_assert_error (error, MYNA_CLIENT_STORE_ERROR, MYNA_CLIENT_STORE_ERROR_FAILED);
  g_clear_error (&error);

  /* A path that cannot be made (its folder is a file). */
  {
    g_autofree char *under_file = g_build_filename (text, "store.db", NULL);
    store = myna_client_store_new (under_file, &error);
    g_assert_null (store);
    g_assert_error (error, MYNA_CLIENT_STORE_ERROR, MYNA_CLIENT_STORE_ERROR_FAILED);
    g_clear_error (&error);
  }
  store = myna_client_store_new ("", &error);
  g_assert_null (store);
  g_assert_error (error, MYNA_CLIENT_STORE_ERROR, MYNA_CLIENT_STORE_ERROR_FAILED);
}

/* An existing file others could read is made private, with a warning. */
static void
test_store_tighten (Fixture *f, gconstpointer unused)
{
  g_autofree char *path = g_build_filename (f->dir, "store.db", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (MynaClientStore) store = NULL;
  struct stat st;

  g_assert_true (g_file_set_contents (path, "", 0, &error));
  g_assert_cmpint (g_chmod (path, 0644), ==, 0);
  g_test_expect_message ("myna-client", G_LOG_LEVEL_WARNING, "*readable by other users*");
  store = myna_client_store_new (path, &error);
  g_test_assert_expected_messages ();
  g_assert_no_error (error);
  g_assert_cmpint (g_stat (path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
}

/* Misuse of the API is a critical, not a crash. */
static void
test_store_misuse (void)
{
  g_autoptr (MynaClientStore) store = open_memory ();

  g_test_expect_message ("myna-client", G_LOG_LEVEL_CRITICAL, "*assertion*");
  g_assert_false (myna_client_store_set_account (store, NULL, "pw", NULL));
  g_test_assert_expected_messages ();
  g_test_expect_message ("myna-client", G_LOG_LEVEL_CRITICAL, "*assertion*");
  g_assert_false (myna_client_store_add_incoming (store, NULL, "k", NULL));
  g_test_assert_expected_messages ();
  g_test_expect_message ("myna-client", G_LOG_LEVEL_CRITICAL, "*assertion*");
  g_assert_false (myna_client_store_set_message_state (store, "x", MYNA_CLIENT_MESSAGE_RECEIVED, NULL));
  g_test_assert_expected_messages ();
  g_test_expect_message ("myna-client", G_LOG_LEVEL_CRITICAL, "*assertion*");
  g_assert_null (myna_client_store_get_value (NULL, "k"));
  g_test_assert_expected_messages ();
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/store/memory", test_store_memory);
  g_test_add_func ("/store/account", test_store_account);
  g_test_add_func ("/store/values", test_store_values);
  g_test_add_func ("/store/clear-account", test_store_clear_account);
  g_test_add_func ("/store/roster", test_store_roster);
  g_test_add_func ("/store/outgoing", test_store_outgoing);
  g_test_add_func ("/store/states", test_store_states);
  g_test_add_func ("/store/incoming", test_store_incoming);
  g_test_add_func ("/store/messages", test_store_messages);
  g_test_add_func ("/store/notifications", test_store_notifications);
  g_test_add ("/store/persistence", Fixture, NULL, fixture_setup, test_store_persistence,
              fixture_teardown);
  g_test_add ("/store/version", Fixture, NULL, fixture_setup, test_store_version,
              fixture_teardown);
  g_test_add ("/store/corrupt", Fixture, NULL, fixture_setup, test_store_corrupt,
              fixture_teardown);
  g_test_add ("/store/tighten", Fixture, NULL, fixture_setup, test_store_tighten,
              fixture_teardown);
  g_test_add_func ("/store/misuse", test_store_misuse);
  return g_test_run ();
}
