/* test-muc-disco.c: the MUC service's discovery and administration, on a
 * real mynad serving conference.localhost with the muc module:
 * disco#info of the service and of rooms (features, muc#roominfo),
 * disco#items with XEP-0059 paging over 2,500 rooms, XEP-0410 self-ping,
 * the admin socket's module commands (`mynactl muc …`, and what the core
 * does with a module's command), and /api/v1/muc/rooms. */
#include "stanza-expect.h"

#include <sys/un.h>
#include <libsoup/soup.h>
#include <json-glib/json-glib.h>

#define TOKEN    "muc-test-token-0123456789"
#define MODULES  "disco;ping;version;auth;bind;roster;presence;rest"
#define SERVICE  "conference.localhost"
#define CONF                                                   \
  MYNAD_PLAIN_AUTH                                             \
  "[listener:http]\nkind = http\naddress = 127.0.0.1\nport = 0\n" \
  "[module:rest]\ntoken = " TOKEN "\n"                         \
  "[component:" SERVICE "]\nmodule = muc\nmodules = ping\n"

typedef struct {
  Mynad        d;
  SoupSession *session;
  char        *base;
} Fixture;

/* The port mynad's log says the http listener bound. */
static guint
http_port (Mynad *d)
{
  g_autoptr(GRegex) re = g_regex_new ("listening for http on 127\\.0\\.0\\.1 port ([0-9]+)",
                                      0, 0, NULL);
  g_autoptr(GMatchInfo) match = NULL;
  g_autofree char *port = NULL;

  if (!g_regex_match (re, d->log->str, 0, &match))
    g_error ("mynad opened no http listener:\n%s", d->log->str);
  port = g_match_info_fetch (match, 1);
  return (guint) g_ascii_strtoull (port, NULL, 10);
}

static void
setup (Fixture *f, gconstpointer unused)
{
  f->d.modules = MODULES;
  mynad_start (&f->d, CONF);
  f->base = g_strdup_printf ("http://127.0.0.1:%u", http_port (&f->d));
  f->session = soup_session_new_with_options ("timeout", WAIT_MS / 1000, NULL);
  mynad_add_user (&f->d, "alice", "pw-alice");
  mynad_add_user (&f->d, "bob", "pw-bob");
}

static void
teardown (Fixture *f, gconstpointer unused)
{
  g_clear_object (&f->session);
  g_free (f->base);
  g_assert_cmpint (mynad_stop (&f->d), ==, 0);
}

/* One request line to the admin socket, as mynactl sends it, without a
 * process per request (the paging test makes thousands of rooms).
 * Returns: (transfer full) the whole answer. */
static char *
admin_line (Fixture *f, const char *line)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  g_autofree char *path = g_build_filename (f->d.dir, "mynad.sock", NULL);
  g_autofree char *req = g_strconcat (line, "\n", NULL);
  g_autoptr(GString) reply = g_string_new (NULL);
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  char buf[4096];
  ssize_t n;

  g_strlcpy (sa.sun_path, path, sizeof sa.sun_path);
  g_assert_cmpint (connect (fd, (struct sockaddr *) &sa, sizeof sa), ==, 0);
  g_assert_cmpint (write (fd, req, strlen (req)), ==, (ssize_t) strlen (req));
  while ((n = read (fd, buf, sizeof buf)) > 0)
    g_string_append_len (reply, buf, n);
  close (fd);
  return g_string_free (g_steal_pointer (&reply), FALSE);
}

/* Sends @xml (an iq with id @id) and returns the answer with that id. */
static char *
iq (Client *c, const char *id, const char *xml)
{
  g_autofree char *needle = g_strdup_printf ("id='%s'", id);
  const char *needles[] = { needle, NULL };

  client_send (c, xml);
  char *answer = take_stanza (c, "iq", needles);
  g_assert_nonnull (answer);
  return answer;
}

/* ---- the admin socket and mynactl ------------------------------------------------ */

/* A module's command: listed among the known ones, its words and options
 * passed through mynactl, its text and exit status back. */
static void
test_admin_commands (Fixture *f, gconstpointer unused)
{
  g_autofree char *out = NULL;

  /* An unknown command names the modules' commands too. */
  g_assert_cmpint (mynactl (&f->d, &out, "frobnicate", NULL), ==, 1);
  g_assert_nonnull (strstr (out, "ERR unknown command 'frobnicate'"));
  g_assert_nonnull (strstr (out, "muc list|create|destroy"));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (mynactl (&f->d, &out, "muc", "sing", NULL), ==, 1);
  g_assert_nonnull (strstr (out, "ERR usage: muc list"));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (mynactl (&f->d, &out, "muc", "list", NULL), ==, 0);
  g_assert_cmpstr (out, ==, "OK\n");
  g_clear_pointer (&out, g_free);

  /* Options of a module's command reach it (mynactl does not refuse them). */
  g_assert_cmpint (mynactl (&f->d, &out, "muc", "create", "lobby@" SERVICE, "--persistent",
                            "--owner", "alice@localhost", "--name", "The", "Lobby", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "created lobby@" SERVICE " (persistent)\nOK\n"));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (mynactl (&f->d, &out, "muc", "create", "scratch@" SERVICE, NULL), ==, 0);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (mynactl (&f->d, &out, "muc", "list", NULL), ==, 0);
  g_assert_cmpstr (out, ==, "lobby@" SERVICE "\t0\tpersistent\tpublic\tThe Lobby\n"
                            "scratch@" SERVICE "\t0\ttemporary\tpublic\tscratch\nOK\n");
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (mynactl (&f->d, &out, "muc", "list", SERVICE, NULL), ==, 0);
  g_assert_nonnull (strstr (out, "lobby@"));
  g_clear_pointer (&out, g_free);

  /* Bad input: a clear error and exit status 1, never a crash. */
  g_assert_cmpint (mynactl (&f->d, &out, "muc", "create", "lobby@" SERVICE, NULL), ==, 1);
  g_assert_nonnull (strstr (out, "ERR room lobby@" SERVICE " exists"));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (mynactl (&f->d, &out, "muc", "create", "x@nowhere.localhost", NULL), ==, 1);
  g_assert_nonnull (strstr (out, "ERR nowhere.localhost is not a MUC service here"));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (mynactl (&f->d, &out, "muc", "create", SERVICE, NULL), ==, 1);
  g_assert_nonnull (strstr (out, "is not a room JID"));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (mynactl (&f->d, &out, "muc", "create", "y@" SERVICE, "--owner", NULL), ==, 1);
  g_assert_nonnull (strstr (out, "unknown or incomplete option '--owner'"));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (mynactl (&f->d, &out, "muc", "list", "localhost", NULL), ==, 1);
  g_assert_nonnull (strstr (out, "ERR localhost is not a MUC service here"));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (mynactl (&f->d, &out, "muc", "create", "bad\nline@" SERVICE, NULL), ==, 2);
  g_clear_pointer (&out, g_free);

  /* Destroy, with a reason of several words. */
  g_assert_cmpint (mynactl (&f->d, &out, "muc", "destroy", "scratch@" SERVICE, "moving",
                            "elsewhere", NULL), ==, 0);
  g_assert_cmpstr (out, ==, "destroyed scratch@" SERVICE "\nOK\n");
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (mynactl (&f->d, &out, "muc", "destroy", "scratch@" SERVICE, NULL), ==, 1);
  g_assert_nonnull (strstr (out, "ERR no room scratch@" SERVICE));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (mynactl (&f->d, &out, "muc", "list", NULL), ==, 0);
  g_assert_null (strstr (out, "scratch@"));
  g_clear_pointer (&out, g_free);

  /* Unloading the module takes its command away; loading brings it back. */
  g_assert_cmpint (mynactl (&f->d, &out, "unload", "muc", SERVICE, NULL), ==, 0);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (mynactl (&f->d, &out, "muc", "list", NULL), ==, 1);
  g_assert_nonnull (strstr (out, "ERR unknown command 'muc'"));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (mynactl (&f->d, &out, "load", "muc", SERVICE, NULL), ==, 0);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (mynactl (&f->d, &out, "muc", "list", NULL), ==, 0);
  /* The persistent room came back from storage. */
  g_assert_nonnull (strstr (out, "lobby@" SERVICE "\t0\tpersistent"));
}

/* ---- disco#info ------------------------------------------------------------------- */

/* The service: conference/text and NS_MUC; a room: its identity, muc_*
 * features and muc#roominfo; a room that does not exist: item-not-found. */
static void
test_info (Fixture *f, gconstpointer unused)
{
  g_autofree char *out = NULL;
  g_autoptr(Client) c = login (&f->d, "bob", "pc");
  g_autofree char *a = NULL;

  g_assert_cmpint (mynactl (&f->d, &out, "muc", "create", "lobby@" SERVICE, "--persistent",
                            "--name", "The Lobby", NULL), ==, 0);
  a = iq (c, "i1", "<iq type='get' id='i1' to='" SERVICE "'>"
                   "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
  g_assert_nonnull (strstr (a, "type='result'"));
  g_assert_nonnull (strstr (a, "<identity category='conference' type='text' name='Chatrooms'/>"));
  g_assert_nonnull (strstr (a, "<feature var='http://jabber.org/protocol/muc'/>"));
  g_assert_nonnull (strstr (a, "<feature var='http://jabber.org/protocol/rsm'/>"));
  g_assert_nonnull (strstr (a, "<feature var='urn:xmpp:ping'/>"));
  g_clear_pointer (&a, g_free);

  a = iq (c, "i2", "<iq type='get' id='i2' to='lobby@" SERVICE "'>"
                   "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
  g_assert_nonnull (strstr (a, "type='result'"));
  g_assert_nonnull (strstr (a, "<identity category='conference' type='text' name='The Lobby'/>"));
  const char *features[] = {
    "http://jabber.org/protocol/muc", "muc_public", "muc_persistent", "muc_open",
    "muc_unmoderated", "muc_semianonymous", "muc_unsecured", "jabber:iq:register",
    "http://jabber.org/protocol/muc#self-ping-optimization",
  };
  for (guint i = 0; i < G_N_ELEMENTS (features); i++)
    {
      g_autofree char *needle = g_strdup_printf ("<feature var='%s'/>", features[i]);
      if (strstr (a, needle) == NULL)
        g_error ("no %s in %s", needle, a);
    }
  g_assert_null (strstr (a, "muc_temporary"));
  g_assert_null (strstr (a, "muc_hidden"));
  g_assert_nonnull (strstr (a, "<value>http://jabber.org/protocol/muc#roominfo</value>"));
  g_assert_nonnull (strstr (a, "<field var='muc#roominfo_occupants' type='text-single'>"
                               "<value>0</value></field>"));
  g_assert_nonnull (strstr (a, "<field var='muc#roomconfig_roomname' type='text-single'>"
                               "<value>The Lobby</value></field>"));
  g_clear_pointer (&a, g_free);

  /* Joined: the count says so. */
  client_send (c, "<presence to='lobby@" SERVICE "/bob'>"
                  "<x xmlns='http://jabber.org/protocol/muc'/></presence>");
  g_assert_true (expect_stanza (c, "presence", "from='lobby@" SERVICE "/bob'", "code='110'", NULL));
  a = iq (c, "i3", "<iq type='get' id='i3' to='lobby@" SERVICE "'>"
                   "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
  g_assert_nonnull (strstr (a, "<field var='muc#roominfo_occupants' type='text-single'>"
                               "<value>1</value></field>"));
  g_clear_pointer (&a, g_free);

  /* Nothing there. */
  a = iq (c, "i4", "<iq type='get' id='i4' to='nosuch@" SERVICE "'>"
                   "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
  g_assert_nonnull (strstr (a, "type='error'"));
  g_assert_nonnull (strstr (a, "<item-not-found"));
  g_clear_pointer (&a, g_free);
  /* A node of the room it does not know. */
  a = iq (c, "i5", "<iq type='get' id='i5' to='lobby@" SERVICE "'>"
                   "<query xmlns='http://jabber.org/protocol/disco#info' node='nope'/></iq>");
  g_assert_nonnull (strstr (a, "<item-not-found"));
}

/* ---- disco#items and RSM ---------------------------------------------------------- */

/* The JIDs of the <item/>s of @answer, in order, appended to @jids. */
static guint
collect_items (const char *answer, GPtrArray *jids)
{
  g_autoptr(GRegex) re = g_regex_new ("<item jid='([^']+)'", 0, 0, NULL);
  g_autoptr(GMatchInfo) m = NULL;
  guint n = 0;

  g_regex_match (re, answer, 0, &m);
  while (g_match_info_matches (m))
    {
      g_ptr_array_add (jids, g_match_info_fetch (m, 1));
      n++;
      g_match_info_next (m, NULL);
    }
  return n;
}

/* The text of <@name> in @answer, or NULL. */
static char *
child_text (const char *answer, const char *name)
{
  g_autofree char *pattern = g_strdup_printf ("<%s[^>]*>([^<]*)</%s>", name, name);
  g_autoptr(GRegex) re = g_regex_new (pattern, 0, 0, NULL);
  g_autoptr(GMatchInfo) m = NULL;

  return g_regex_match (re, answer, 0, &m) ? g_match_info_fetch (m, 1) : NULL;
}

static char *
items_query (Client *c, const char *to, const char *set)
{
  static guint serial;
  g_autofree char *id = g_strdup_printf ("it%u", ++serial);
  g_autofree char *xml = g_strdup_printf (
      "<iq type='get' id='%s' to='%s'><query xmlns='http://jabber.org/protocol/disco#items'>"
      "%s</query></iq>", id, to, set != NULL ? set : "");
  return iq (c, id, xml);
}

#define N_ROOMS 2500

/* 2,500 public rooms paged forwards by <after/>, backwards by <before/>,
 * and by <index/>; unlisted rooms left out; bad paging refused. */
static void
test_items_rsm (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c = login (&f->d, "bob", "pc");
  g_autoptr(GPtrArray) all = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) back = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *last = NULL;
  g_autofree char *a = NULL;
  gint64 t0 = g_get_monotonic_time ();

  /* In an order that is not the JID order. */
  for (guint i = 0; i < N_ROOMS; i++)
    {
      g_autofree char *line = g_strdup_printf ("muc create r%05u@" SERVICE " --persistent",
                                               (i * 7919) % N_ROOMS);
      g_autofree char *out = admin_line (f, line);
      if (!g_str_has_suffix (out, "OK\n"))
        g_error ("%s: %s", line, out);
      mynad_log_drain (&f->d);     /* mynad never blocks on its log */
    }
  /* Not listed: a temporary room nobody is in, a hidden room. */
  g_autofree char *out = admin_line (f, "muc create zz-empty@" SERVICE " --temporary");
  g_assert_true (g_str_has_suffix (out, "OK\n"));
  g_clear_pointer (&out, g_free);
  out = admin_line (f, "muc create zz-hidden@" SERVICE " --persistent --hidden");
  g_assert_true (g_str_has_suffix (out, "OK\n"));
  g_test_message ("%u rooms created in %.1f s", N_ROOMS,
                  (g_get_monotonic_time () - t0) / 1e6);

  /* Forwards, 100 at a time. */
  for (guint page = 0;; page++)
    {
      g_autofree char *set = NULL;
      if (last == NULL)
        set = g_strdup ("<set xmlns='http://jabber.org/protocol/rsm'><max>100</max></set>");
      else
        set = g_strdup_printf ("<set xmlns='http://jabber.org/protocol/rsm'><max>100</max>"
                               "<after>%s</after></set>", last);
      g_clear_pointer (&a, g_free);
      a = items_query (c, SERVICE, set);
      guint before = all->len;
      guint n = collect_items (a, all);
      g_autofree char *count = child_text (a, "count");
      g_assert_cmpstr (count, ==, G_STRINGIFY (N_ROOMS));
      if (n == 0)
        {
          g_assert_cmpuint (page, ==, N_ROOMS / 100);
          g_assert_null (strstr (a, "<first"));
          break;
        }
      g_assert_cmpuint (n, ==, 100);
      g_autofree char *index = g_strdup_printf ("<first index='%u'>", before);
      g_assert_nonnull (strstr (a, index));
      g_clear_pointer (&last, g_free);
      last = child_text (a, "last");
      g_assert_cmpstr (last, ==, all->pdata[all->len - 1]);
      g_assert_cmpuint (page, <, N_ROOMS / 100);
    }
  g_assert_cmpuint (all->len, ==, N_ROOMS);
  for (guint i = 0; i < N_ROOMS; i++)
    {
      g_autofree char *want = g_strdup_printf ("r%05u@" SERVICE, i);
      g_assert_cmpstr (all->pdata[i], ==, want);
    }

  /* Backwards from the end: <before/> empty is the last page. */
  g_clear_pointer (&a, g_free);
  a = items_query (c, SERVICE, "<set xmlns='http://jabber.org/protocol/rsm'><max>300</max>"
                               "<before/></set>");
  g_assert_cmpuint (collect_items (a, back), ==, 300);
  g_assert_cmpstr (back->pdata[0], ==, "r02200@" SERVICE);
  g_assert_nonnull (strstr (a, "<first index='2200'>r02200@" SERVICE "</first>"));
  g_autofree char *first = child_text (a, "first");
  g_clear_pointer (&a, g_free);
  g_autofree char *set = g_strdup_printf ("<set xmlns='http://jabber.org/protocol/rsm'>"
                                          "<max>300</max><before>%s</before></set>", first);
  a = items_query (c, SERVICE, set);
  g_ptr_array_set_size (back, 0);
  g_assert_cmpuint (collect_items (a, back), ==, 300);
  g_assert_cmpstr (back->pdata[0], ==, "r01900@" SERVICE);
  g_assert_cmpstr (back->pdata[299], ==, "r02199@" SERVICE);

  /* By index; max 0 is the count alone. */
  g_clear_pointer (&a, g_free);
  a = items_query (c, SERVICE, "<set xmlns='http://jabber.org/protocol/rsm'><max>10</max>"
                               "<index>2495</index></set>");
  g_ptr_array_set_size (back, 0);
  g_assert_cmpuint (collect_items (a, back), ==, 5);
  g_assert_cmpstr (back->pdata[0], ==, "r02495@" SERVICE);
  g_clear_pointer (&a, g_free);
  a = items_query (c, SERVICE, "<set xmlns='http://jabber.org/protocol/rsm'><max>0</max></set>");
  g_assert_null (strstr (a, "<item "));
  g_assert_nonnull (strstr (a, "<count>2500</count>"));

  /* Without <set/>: at most 1,000 items, and a <set/> saying there are more. */
  g_clear_pointer (&a, g_free);
  a = items_query (c, SERVICE, NULL);
  g_ptr_array_set_size (back, 0);
  g_assert_cmpuint (collect_items (a, back), ==, 1000);
  g_assert_nonnull (strstr (a, "<count>2500</count>"));
  g_assert_null (strstr (a, "zz-empty"));

  /* Bad paging. */
  g_clear_pointer (&a, g_free);
  a = items_query (c, SERVICE, "<set xmlns='http://jabber.org/protocol/rsm'><max>-1</max></set>");
  g_assert_nonnull (strstr (a, "<bad-request"));
  g_clear_pointer (&a, g_free);
  a = items_query (c, SERVICE, "<set xmlns='http://jabber.org/protocol/rsm'>"
                               "<index>2501</index></set>");
  g_assert_nonnull (strstr (a, "<item-not-found"));
  g_clear_pointer (&a, g_free);
  a = items_query (c, SERVICE, "<set xmlns='http://jabber.org/protocol/rsm'>"
                               "<after>x@elsewhere.localhost</after></set>");
  g_assert_nonnull (strstr (a, "<item-not-found"));

  /* A room destroyed between two pages leaves no hole. */
  g_clear_pointer (&out, g_free);
  out = admin_line (f, "muc destroy r00100@" SERVICE);
  g_assert_true (g_str_has_suffix (out, "OK\n"));
  g_clear_pointer (&a, g_free);
  a = items_query (c, SERVICE, "<set xmlns='http://jabber.org/protocol/rsm'><max>2</max>"
                               "<after>r00100@" SERVICE "</after></set>");
  g_assert_nonnull (strstr (a, "<first index='100'>r00101@" SERVICE "</first>"));
  g_assert_nonnull (strstr (a, "<count>2499</count>"));
}

/* A room's items: its occupants to an occupant, nothing to others. */
static void
test_room_items (Fixture *f, gconstpointer unused)
{
  g_autofree char *out = NULL;
  g_autoptr(Client) alice = login (&f->d, "alice", "pc");
  g_autoptr(Client) bob = login (&f->d, "bob", "pc");
  g_autofree char *a = NULL;

  g_assert_cmpint (mynactl (&f->d, &out, "muc", "create", "lobby@" SERVICE, NULL), ==, 0);
  client_send (alice, "<presence to='lobby@" SERVICE "/Alice'>"
                      "<x xmlns='http://jabber.org/protocol/muc'/></presence>");
  g_assert_true (expect_stanza (alice, "presence", "code='110'", NULL));
  a = items_query (alice, "lobby@" SERVICE, NULL);
  g_assert_nonnull (strstr (a, "<item jid='lobby@" SERVICE "/Alice'/>"));
  g_clear_pointer (&a, g_free);
  a = items_query (bob, "lobby@" SERVICE, NULL);
  g_assert_nonnull (strstr (a, "type='result'"));
  g_assert_null (strstr (a, "<item "));
  g_clear_pointer (&a, g_free);
  /* The occupied temporary room is listed; gone when empty. */
  a = items_query (bob, SERVICE, NULL);
  g_assert_nonnull (strstr (a, "<item jid='lobby@" SERVICE "' name='lobby'/>"));
  g_clear_pointer (&a, g_free);
  a = items_query (bob, "nosuch@" SERVICE, NULL);
  g_assert_nonnull (strstr (a, "<item-not-found"));
}

/* ---- self-ping (XEP-0410) --------------------------------------------------------- */

static void
test_self_ping (Fixture *f, gconstpointer unused)
{
  g_autofree char *out = NULL;
  g_autoptr(Client) alice = login (&f->d, "alice", "pc");
  g_autoptr(Client) bob = login (&f->d, "bob", "pc");
  g_autofree char *a = NULL;

  g_assert_cmpint (mynactl (&f->d, &out, "muc", "create", "lobby@" SERVICE, "--persistent",
                            NULL), ==, 0);
  client_send (alice, "<presence to='lobby@" SERVICE "/Alice'>"
                      "<x xmlns='http://jabber.org/protocol/muc'/></presence>");
  g_assert_true (expect_stanza (alice, "presence", "code='110'", NULL));

  /* Her own nick: the room answers. */
  a = iq (alice, "p1", "<iq type='get' id='p1' to='lobby@" SERVICE "/Alice'>"
                       "<ping xmlns='urn:xmpp:ping'/></iq>");
  g_assert_nonnull (strstr (a, "type='result'"));
  g_assert_nonnull (strstr (a, "from='lobby@" SERVICE "/Alice'"));
  g_clear_pointer (&a, g_free);
  /* Someone not in the room. */
  a = iq (bob, "p2", "<iq type='get' id='p2' to='lobby@" SERVICE "/Alice'>"
                     "<ping xmlns='urn:xmpp:ping'/></iq>");
  g_assert_nonnull (strstr (a, "type='error'"));
  g_assert_nonnull (strstr (a, "<not-acceptable"));
  g_assert_nonnull (strstr (a, "type='cancel'"));
  g_clear_pointer (&a, g_free);
  /* A nick nobody holds, from an occupant. */
  a = iq (alice, "p3", "<iq type='get' id='p3' to='lobby@" SERVICE "/Ghost'>"
                       "<ping xmlns='urn:xmpp:ping'/></iq>");
  g_assert_nonnull (strstr (a, "<not-acceptable"));
  g_clear_pointer (&a, g_free);

  /* Once she has left, the nick is no longer hers. */
  client_send (alice, "<presence type='unavailable' to='lobby@" SERVICE "/Alice'/>");
  g_assert_true (expect_stanza (alice, "presence", "type='unavailable'", NULL));
  a = iq (alice, "p4", "<iq type='get' id='p4' to='lobby@" SERVICE "/Alice'>"
                       "<ping xmlns='urn:xmpp:ping'/></iq>");
  g_assert_nonnull (strstr (a, "<not-acceptable"));
  g_clear_pointer (&a, g_free);

  /* The component's ping module answers the domain, not room JIDs' nicks. */
  a = iq (alice, "p5", "<iq type='get' id='p5' to='" SERVICE "'>"
                       "<ping xmlns='urn:xmpp:ping'/></iq>");
  g_assert_nonnull (strstr (a, "type='result'"));
}

/* ---- the HTTP API ------------------------------------------------------------------ */

typedef struct {
  guint     status;
  char     *text;
  JsonNode *json;
  char     *location;
} Reply;

static void
reply_free (Reply *r)
{
  g_free (r->text);
  g_free (r->location);
  g_clear_pointer (&r->json, json_node_unref);
  g_free (r);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Reply, reply_free)

static Reply *
http (Fixture *f, const char *method, const char *path, const char *token, const char *body)
{
  g_autofree char *url = g_strconcat (f->base, path, NULL);
  g_autoptr(SoupMessage) msg = soup_message_new (method, url);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) answer = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  Reply *r = g_new0 (Reply, 1);
  gsize n;

  g_assert_nonnull (msg);
  if (token != NULL)
    {
      g_autofree char *auth = g_strconcat ("Bearer ", token, NULL);
      soup_message_headers_append (soup_message_get_request_headers (msg), "Authorization", auth);
    }
  if (body != NULL)
    {
      g_autoptr(GBytes) bytes = g_bytes_new (body, strlen (body));
      soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
    }
  answer = soup_session_send_and_read (f->session, msg, NULL, &error);
  g_assert_no_error (error);
  r->status = soup_message_get_status (msg);
  const char *data = g_bytes_get_data (answer, &n);
  r->text = g_strndup (data != NULL ? data : "", n);
  r->location = g_strdup (soup_message_headers_get_one (soup_message_get_response_headers (msg),
                                                        "Location"));
  if (n > 0 && json_parser_load_from_data (parser, r->text, -1, NULL))
    r->json = json_node_copy (json_parser_get_root (parser));
  return r;
}

static void
test_http (Fixture *f, gconstpointer unused)
{
  g_autoptr(Reply) r = NULL;

  /* No token, no API. */
  r = http (f, "GET", "/api/v1/muc/rooms", NULL, NULL);
  g_assert_cmpuint (r->status, ==, 401);
  g_clear_pointer (&r, reply_free);
  r = http (f, "GET", "/api/v1/muc/rooms", "wrong", NULL);
  g_assert_cmpuint (r->status, ==, 401);
  g_clear_pointer (&r, reply_free);

  r = http (f, "POST", "/api/v1/muc/rooms", TOKEN,
            "{\"room\": \"Lobby\", \"service\": \"" SERVICE "\", \"owner\": \"alice@localhost\","
            " \"persistent\": true, \"name\": \"The Lobby\"}");
  g_assert_cmpuint (r->status, ==, 201);
  g_assert_cmpstr (r->location, ==, "/api/v1/muc/rooms/lobby@" SERVICE);
  JsonObject *o = json_node_get_object (r->json);
  g_assert_cmpstr (json_object_get_string_member (o, "jid"), ==, "lobby@" SERVICE);
  g_assert_cmpstr (json_object_get_string_member (o, "name"), ==, "The Lobby");
  g_assert_true (json_object_get_boolean_member (o, "persistent"));
  g_assert_true (json_object_get_boolean_member (o, "public"));
  g_assert_cmpint (json_object_get_int_member (o, "occupants"), ==, 0);
  g_clear_pointer (&r, reply_free);
  /* The room's JID names the service too. */
  r = http (f, "POST", "/api/v1/muc/rooms", TOKEN, "{\"room\": \"second@" SERVICE "\"}");
  g_assert_cmpuint (r->status, ==, 201);
  g_clear_pointer (&r, reply_free);

  r = http (f, "GET", "/api/v1/muc/rooms", TOKEN, NULL);
  g_assert_cmpuint (r->status, ==, 200);
  JsonArray *rooms = json_object_get_array_member (json_node_get_object (r->json), "rooms");
  g_assert_cmpuint (json_array_get_length (rooms), ==, 2);
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (rooms, 0),
                                                  "jid"), ==, "lobby@" SERVICE);
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (rooms, 1),
                                                  "jid"), ==, "second@" SERVICE);
  g_assert_false (json_object_get_boolean_member (json_array_get_object_element (rooms, 1),
                                                  "persistent"));
  g_clear_pointer (&r, reply_free);

  /* Bad bodies and requests: 400, 404, 405, 409. */
  const char *bad[] = {
    "{\"room\": \"\"}",
    "{\"service\": \"" SERVICE "\"}",
    "{\"room\": \"a b\"}",
    "{\"room\": \"x@" SERVICE "/nick\"}",
    "{\"room\": \"x\", \"persistent\": \"yes\"}",
    "{\"room\": \"x\", \"owner\": \"localhost\"}",
    "{\"room\": \"x@" SERVICE "\", \"service\": \"other.localhost\"}",
    "{\"room\": \"x\",}",
    "[\"x\"]",
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_clear_pointer (&r, reply_free);
      r = http (f, "POST", "/api/v1/muc/rooms", TOKEN, bad[i]);
      if (r->status != 400)
        g_error ("%s: %u %s", bad[i], r->status, r->text);
      g_assert_nonnull (json_object_get_string_member (json_node_get_object (r->json), "error"));
    }
  g_clear_pointer (&r, reply_free);
  r = http (f, "POST", "/api/v1/muc/rooms", TOKEN, "{\"room\": \"x@nowhere.localhost\"}");
  g_assert_cmpuint (r->status, ==, 404);
  g_clear_pointer (&r, reply_free);
  r = http (f, "POST", "/api/v1/muc/rooms", TOKEN, "{\"room\": \"lobby\"}");
  g_assert_cmpuint (r->status, ==, 409);
  g_clear_pointer (&r, reply_free);
  r = http (f, "PUT", "/api/v1/muc/rooms", TOKEN, "{}");
  g_assert_cmpuint (r->status, ==, 405);
  g_clear_pointer (&r, reply_free);
  r = http (f, "GET", "/api/v1/muc/rooms?service=localhost", TOKEN, NULL);
  g_assert_cmpuint (r->status, ==, 404);
  g_clear_pointer (&r, reply_free);

  r = http (f, "DELETE", "/api/v1/muc/rooms/second@" SERVICE "?reason=bye", TOKEN, NULL);
  g_assert_cmpuint (r->status, ==, 204);
  g_clear_pointer (&r, reply_free);
  r = http (f, "DELETE", "/api/v1/muc/rooms/second@" SERVICE, TOKEN, NULL);
  g_assert_cmpuint (r->status, ==, 404);
  g_clear_pointer (&r, reply_free);
  r = http (f, "DELETE", "/api/v1/muc/rooms/not-a-room", TOKEN, NULL);
  g_assert_cmpuint (r->status, ==, 400);
  g_clear_pointer (&r, reply_free);
  r = http (f, "GET", "/api/v1/muc/rooms?service=" SERVICE, TOKEN, NULL);
  rooms = json_object_get_array_member (json_node_get_object (r->json), "rooms");
  g_assert_cmpuint (json_array_get_length (rooms), ==, 1);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/muc-disco/admin-commands", Fixture, NULL, setup, test_admin_commands, teardown);
  g_test_add ("/muc-disco/info", Fixture, NULL, setup, test_info, teardown);
  g_test_add ("/muc-disco/items-rsm", Fixture, NULL, setup, test_items_rsm, teardown);
  g_test_add ("/muc-disco/room-items", Fixture, NULL, setup, test_room_items, teardown);
  g_test_add ("/muc-disco/self-ping", Fixture, NULL, setup, test_self_ping, teardown);
  g_test_add ("/muc-disco/http", Fixture, NULL, setup, test_http, teardown);
  return g_test_run ();
}
