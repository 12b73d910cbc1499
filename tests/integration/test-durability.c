/* test-durability: what the server acknowledged survives a kill -9.
 *
 * Each test starts mynad on a temporary data directory, pipelines many
 * writes of one kind, notes which ones were acknowledged (the IQ result,
 * the roster push, mynactl's answer), kills mynad with SIGKILL right
 * after a batch of acknowledgements arrived, starts it again on the same
 * data directory and checks that every acknowledged write is there.  The
 * cycle repeats a bounded number of times: a server that answers before
 * its write commits loses some of them in practically every cycle.
 *
 * Also: a deleted account leaves nothing behind for whoever registers
 * the name next (its pre-approvals by others included). */
#include "mynad-harness.h"

#include <myna/storage.h>
#include <sqlite3.h>
#include <stdlib.h>

#define MODULES "disco;ping;version;auth;bind;roster;presence;vcard;private;blocking;" \
                "register;offline;last"
#define EXTRA   "[module:register]\nallow_insecure = true\n" MYNAD_PLAIN_AUTH \
                "max_failures = 1000\n"   /* probing old passwords */
#define CYCLES  4
#define PW      "secret-pw"

typedef struct {
  Mynad d;
} Fixture;

static void
setup (Fixture *f, gconstpointer unused)
{
  f->d.modules = MODULES;
  mynad_start (&f->d, EXTRA);
}

static void
teardown (Fixture *f, gconstpointer unused)
{
  g_assert_cmpint (mynad_stop (&f->d), ==, 0);
}

/* ---- reading answers -------------------------------------------------------- */

/* The value of attribute @name in the start tag [@tag, @end), or NULL. */
static char *
tag_attr (const char *tag, const char *end, const char *name)
{
  g_autofree char *needle = g_strdup_printf (" %s=", name);
  g_autofree char *head = g_strndup (tag, end - tag);
  const char *p = strstr (head, needle);
  const char *close;

  if (p == NULL)
    return NULL;
  p += strlen (needle);
  close = strchr (p + 1, *p);
  return close != NULL ? g_strndup (p + 1, close - p - 1) : NULL;
}

/* Marks in @acked (of @n) every <iq type='result' id='@prefix N'/> the
 * client received so far; returns how many are marked. */
static guint
scan_results (Client *c, const char *prefix, gboolean *acked, guint n)
{
  const char *p = c->in->str;
  guint count = 0;

  while ((p = strstr (p, "<iq ")) != NULL)
    {
      const char *end = strchr (p, '>');
      g_autofree char *id = NULL, *type = NULL;

      if (end == NULL)
        break;
      id = tag_attr (p, end, "id");
      type = tag_attr (p, end, "type");
      if (id != NULL && g_str_has_prefix (id, prefix) && g_strcmp0 (type, "result") == 0)
        {
          guint64 i = g_ascii_strtoull (id + strlen (prefix), NULL, 10);
          if (i < n)
            acked[i] = TRUE;
        }
      p = end;
    }
  for (guint i = 0; i < n; i++)
    count += acked[i];
  return count;
}

/* Reads until at least one more acknowledgement than @have arrived (the
 * first batch), via @scan; FALSE when none came in time. */
typedef guint (*ScanFunc) (Client *c, gpointer data);

static gboolean
wait_first_batch (Mynad *d, Client *c, ScanFunc scan, gpointer data)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;

  while (scan (c, data) == 0)
    {
      int left = (int) ((deadline - g_get_monotonic_time ()) / 1000);
      /* mynad logs each write of the pipelined batch: its stderr is read
       * meanwhile, so that it never blocks on a full pipe before it
       * answers (it did under ASan with the MUC's log lines) */
      mynad_log_drain (d);
      if (left <= 0 || c->eof)
        return FALSE;
      client_read (c, MIN (left, 100));
    }
  /* Whatever else is already in the socket belongs to the batch. */
  while (client_read (c, 0) && !c->eof)
    ;
  scan (c, data);
  return TRUE;
}

typedef struct {
  const char *prefix;
  gboolean   *acked;
  guint       n;
} Results;

static guint
scan_results_cb (Client *c, gpointer data)
{
  Results *r = data;
  return scan_results (c, r->prefix, r->acked, r->n);
}

/* Waits for the complete <iq/> with id @id; returns its text. */
static char *
client_expect_iq (Client *c, const char *id)
{
  g_autofree char *q1 = g_strdup_printf ("id='%s'", id);
  g_autofree char *q2 = g_strdup_printf ("id=\"%s\"", id);
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;

  for (;;)
    {
      const char *at = strstr (c->in->str, q1);

      if (at == NULL)
        at = strstr (c->in->str, q2);
      if (at != NULL)
        {
          const char *start = at;
          const char *gt = strchr (at, '>');

          while (start > c->in->str && strncmp (start, "<iq", 3) != 0)
            start--;
          if (gt != NULL && gt[-1] == '/')
            return g_strndup (start, gt + 1 - start);
          const char *end = gt != NULL ? strstr (gt, "</iq>") : NULL;
          if (end != NULL)
            return g_strndup (start, end + 5 - start);
        }
      int left = (int) ((deadline - g_get_monotonic_time ()) / 1000);
      if (left <= 0 || c->eof || !client_read (c, left))
        {
          g_test_message ("no complete iq %s in: %s", id, c->in->str);
          return NULL;
        }
    }
}

/* Waits for the complete <iq/> with id @id. */
static gboolean
client_expect_answer (Client *c, const char *id)
{
  g_autofree char *text = client_expect_iq (c, id);

  return text != NULL;
}

static Client *
login (Fixture *f, const char *user, const char *resource)
{
  Client *c = client_login (&f->d, user, PW, resource);

  g_assert_nonnull (c);
  return c;
}

/* The whole roster of @user, as the server answers a get without ver. */
static char *
roster_of (Fixture *f, const char *user)
{
  g_autoptr(Client) c = login (f, user, "check");
  char *roster;

  client_send (c, "<iq type='get' id='rget'><query xmlns='jabber:iq:roster'/></iq>");
  roster = client_expect_iq (c, "rget");
  g_assert_nonnull (roster);
  return roster;
}

static gboolean
roster_has (const char *roster, const char *jid)
{
  g_autofree char *q1 = g_strdup_printf ("jid='%s'", jid);
  g_autofree char *q2 = g_strdup_printf ("jid=\"%s\"", jid);

  return strstr (roster, q1) != NULL || strstr (roster, q2) != NULL;
}

/* ---- roster sets and removes ------------------------------------------------ */

#define ROSTER_N 400

static void
check_roster (Fixture *f, guint cycle, const gboolean *acked, gboolean present)
{
  g_autofree char *roster = roster_of (f, "romeo");
  guint lost = 0, acks = 0;

  for (guint i = 0; i < ROSTER_N; i++)
    {
      g_autofree char *jid = g_strdup_printf ("c%u-%u@example.net", cycle, i);

      acks += acked[i];
      if (acked[i] && roster_has (roster, jid) != present)
        lost++;
    }
  g_test_message ("cycle %u: %u %s acknowledged before the kill, %u lost", cycle, acks,
                  present ? "sets" : "removes", lost);
  g_assert_cmpuint (lost, ==, 0);
}

static void
test_roster (Fixture *f, gconstpointer unused)
{
  mynad_add_user (&f->d, "romeo", PW);
  for (guint cycle = 0; cycle < CYCLES; cycle++)
    {
      gboolean acked[ROSTER_N] = { FALSE };
      Results r = { "s", acked, ROSTER_N };
      g_autoptr(GString) sets = g_string_new (NULL);
      g_autoptr(GString) removes = g_string_new (NULL);
      g_autoptr(Client) c = login (f, "romeo", "writer");

      for (guint i = 0; i < ROSTER_N; i++)
        g_string_append_printf (sets, "<iq type='set' id='s%u'><query xmlns='jabber:iq:roster'>"
                                "<item jid='c%u-%u@example.net' name='Contact %u'>"
                                "<group>G</group></item></query></iq>", i, cycle, i, i);
      client_send (c, sets->str);
      g_assert_true (wait_first_batch (&f->d, c, scan_results_cb, &r));
      mynad_kill_restart (&f->d);
      check_roster (f, cycle, acked, TRUE);

      /* Removes of what the sets left, the same way. */
      g_clear_pointer (&c, client_free);
      c = login (f, "romeo", "writer");
      memset (acked, 0, sizeof acked);
      for (guint i = 0; i < ROSTER_N; i++)
        g_string_append_printf (removes, "<iq type='set' id='s%u'><query xmlns='jabber:iq:roster'>"
                                "<item jid='c%u-%u@example.net' subscription='remove'/>"
                                "</query></iq>", i, cycle, i);
      client_send (c, removes->str);
      /* item-not-found for a set the kill lost is an error, not a result. */
      g_assert_true (wait_first_batch (&f->d, c, scan_results_cb, &r));
      mynad_kill_restart (&f->d);
      check_roster (f, cycle, acked, FALSE);
    }
}

/* ---- subscription state a client's presence changes ------------------------- */

#define SUB_N 200

/* Marks the contacts whose pre-approval a roster push announced. */
static guint
scan_approved_pushes (Client *c, gpointer data)
{
  gboolean *acked = data;
  guint count = 0;

  for (guint i = 0; i < SUB_N; i++)
    {
      g_autofree char *needle = g_strdup_printf ("jid='p%u@example.net'", i);
      const char *at = strstr (c->in->str, needle);
      const char *end = at != NULL ? strchr (at, '>') : NULL;

      if (end != NULL && g_strstr_len (at, end - at, "approved='true'") != NULL)
        acked[i] = TRUE;
      count += acked[i];
    }
  return count;
}

/* Pre-approvals (RFC 6121 §3.4) are acknowledged by their roster push. */
static void
test_subscription (Fixture *f, gconstpointer unused)
{
  gboolean acked[SUB_N] = { FALSE };
  g_autoptr(GString) out = g_string_new (NULL);
  g_autoptr(Client) c = NULL;
  g_autofree char *roster = NULL;
  guint lost = 0, acks = 0;

  mynad_add_user (&f->d, "romeo", PW);
  c = login (f, "romeo", "writer");
  client_send (c, "<iq type='get' id='r0'><query xmlns='jabber:iq:roster'/></iq>");
  g_assert_true (client_expect (c, "id='r0'"));
  for (guint i = 0; i < SUB_N; i++)
    g_string_append_printf (out, "<presence type='subscribed' to='p%u@example.net'/>", i);
  client_send (c, out->str);
  g_assert_true (wait_first_batch (&f->d, c, scan_approved_pushes, acked));
  mynad_kill_restart (&f->d);

  roster = roster_of (f, "romeo");
  for (guint i = 0; i < SUB_N; i++)
    {
      g_autofree char *needle = g_strdup_printf ("jid='p%u@example.net'", i);
      const char *at = strstr (roster, needle);
      const char *end = at != NULL ? strchr (at, '>') : NULL;

      acks += acked[i];
      if (acked[i] && (end == NULL || g_strstr_len (at, end - at, "approved='true'") == NULL))
        lost++;
    }
  g_test_message ("%u pre-approvals pushed before the kill, %u lost", acks, lost);
  g_assert_cmpuint (lost, ==, 0);
}

/* ---- vCard, private XML, blocking -------------------------------------------- */

#define IQ_N 200

/* Pipelines IQ_N sets made by @make (i → the stanza, id 'wN'), kills
 * after the first batch of results; returns the acknowledged ones. */
static gboolean *
pipeline_and_kill (Fixture *f, const char *user, char *(*make) (guint i))
{
  gboolean *acked = g_new0 (gboolean, IQ_N);
  Results r = { "w", acked, IQ_N };
  g_autoptr(GString) all = g_string_new (NULL);
  g_autoptr(Client) c = login (f, user, "writer");

  for (guint i = 0; i < IQ_N; i++)
    {
      g_autofree char *one = make (i);
      g_string_append (all, one);
    }
  client_send (c, all->str);
  g_assert_true (wait_first_batch (&f->d, c, scan_results_cb, &r));
  mynad_kill_restart (&f->d);
  return acked;
}

static char *
make_vcard (guint i)
{
  return g_strdup_printf ("<iq type='set' id='w%u'><vCard xmlns='vcard-temp'>"
                          "<FN>v%u.</FN></vCard></iq>", i, i);
}

static void
test_vcard (Fixture *f, gconstpointer unused)
{
  mynad_add_user (&f->d, "romeo", PW);
  for (guint cycle = 0; cycle < CYCLES; cycle++)
    {
      g_autofree gboolean *acked = pipeline_and_kill (f, "romeo", make_vcard);
      g_autoptr(Client) c = login (f, "romeo", "check");
      g_autofree char *got = NULL;
      const char *fn;
      gint last = -1;

      for (guint i = 0; i < IQ_N; i++)
        if (acked[i])
          last = (gint) i;
      client_send (c, "<iq type='get' id='vget'><vCard xmlns='vcard-temp'/></iq>");
      got = client_expect_iq (c, "vget");
      g_assert_nonnull (got);
      fn = strstr (got, "<FN>v");
      g_assert_nonnull (fn);
      /* The sets were answered in order: the last acknowledged or a later one. */
      g_assert_cmpint (atoi (fn + 5), >=, last);
    }
}

static char *
make_private (guint i)
{
  return g_strdup_printf ("<iq type='set' id='w%u'><query xmlns='jabber:iq:private'>"
                          "<x xmlns='urn:test:p%u'>n%u.</x></query></iq>", i, i, i);
}

static void
test_private (Fixture *f, gconstpointer unused)
{
  mynad_add_user (&f->d, "romeo", PW);
  g_autofree gboolean *acked = pipeline_and_kill (f, "romeo", make_private);
  g_autoptr(Client) c = login (f, "romeo", "check");
  g_autoptr(GString) get = g_string_new (NULL);

  for (guint i = 0; i < IQ_N; i++)
    if (acked[i])
      {
        g_autofree char *id = g_strdup_printf ("g%u", i);
        g_autofree char *got = NULL;
        g_autofree char *want = g_strdup_printf (">n%u.</x>", i);

        g_string_printf (get, "<iq type='get' id='%s'><query xmlns='jabber:iq:private'>"
                         "<x xmlns='urn:test:p%u'/></query></iq>", id, i);
        client_send (c, get->str);
        got = client_expect_iq (c, id);
        g_assert_nonnull (got);
        g_assert_nonnull (strstr (got, want));
      }
}

static char *
make_block (guint i)
{
  return g_strdup_printf ("<iq type='set' id='w%u'><block xmlns='urn:xmpp:blocking'>"
                          "<item jid='b%u@example.net'/></block></iq>", i, i);
}

static void
test_blocking (Fixture *f, gconstpointer unused)
{
  mynad_add_user (&f->d, "romeo", PW);
  g_autofree gboolean *acked = pipeline_and_kill (f, "romeo", make_block);
  g_autoptr(Client) c = login (f, "romeo", "check");
  g_autofree char *list = NULL;

  client_send (c, "<iq type='get' id='bget'><blocklist xmlns='urn:xmpp:blocking'/></iq>");
  list = client_expect_iq (c, "bget");
  g_assert_nonnull (list);
  for (guint i = 0; i < IQ_N; i++)
    if (acked[i])
      {
        g_autofree char *jid = g_strdup_printf ("b%u@example.net", i);
        g_assert_true (roster_has (list, jid));
      }
}

/* ---- accounts: in-band registration and mynactl ------------------------------- */

#define PW_N 20

static gboolean
can_login (Fixture *f, const char *user, const char *password)
{
  Client *c = client_login (&f->d, user, password, "probe");

  if (c == NULL)
    return FALSE;
  client_free (c);
  return TRUE;
}

/* The id number of the last result with @prefix the client received. */
static gint
last_result (Client *c, const char *prefix)
{
  const char *p = c->in->str;
  gint last = -1;

  while ((p = strstr (p, "<iq ")) != NULL)
    {
      const char *end = strchr (p, '>');
      g_autofree char *id = NULL, *type = NULL;

      if (end == NULL)
        break;
      id = tag_attr (p, end, "id");
      type = tag_attr (p, end, "type");
      if (id != NULL && g_str_has_prefix (id, prefix) && g_strcmp0 (type, "result") == 0)
        last = atoi (id + strlen (prefix));
      p = end;
    }
  return last;
}

/* XEP-0077 password changes, pipelined: the password acknowledged last,
 * or one not acknowledged (written later), works after the kill.  (The
 * hashing runs on several workers: the changes may be stored, and
 * answered, in another order than asked.) */
static void
test_register_password (Fixture *f, gconstpointer unused)
{
  gboolean acked[PW_N] = { FALSE };
  Results r = { "w", acked, PW_N };
  g_autoptr(GString) all = g_string_new (NULL);
  g_autoptr(Client) c = NULL;
  gint last;
  gboolean found = FALSE;

  mynad_add_user (&f->d, "romeo", PW);
  c = login (f, "romeo", "writer");
  for (guint i = 0; i < PW_N; i++)
    g_string_append_printf (all, "<iq type='set' id='w%u'><query xmlns='jabber:iq:register'>"
                            "<username>romeo</username><password>new-pw-%u</password>"
                            "</query></iq>", i, i);
  client_send (c, all->str);
  g_assert_true (wait_first_batch (&f->d, c, scan_results_cb, &r));
  last = last_result (c, "w");
  mynad_kill_restart (&f->d);
  g_assert_cmpint (last, >=, 0);
  for (guint i = 0; i < PW_N && !found; i++)
    if (i == (guint) last || !acked[i])
      {
        g_autofree char *pw = g_strdup_printf ("new-pw-%u", i);
        found = can_login (f, "romeo", pw);
      }
  g_assert_true (found);
}

static gssize answer_at (Client *c, const char *id);

/* XEP-0077 password changes, pipelined, all answered: they are stored
 * and answered in the order asked (the hashing runs on several workers,
 * which finish in any order), so the last one asked is the password. */
static void
test_register_password_order (Fixture *f, gconstpointer unused)
{
  g_autoptr(GString) all = g_string_new (NULL);
  g_autoptr(Client) c = NULL;
  gssize prev = -1;

  mynad_add_user (&f->d, "romeo", PW);
  c = login (f, "romeo", "writer");
  for (guint i = 0; i < PW_N; i++)
    g_string_append_printf (all, "<iq type='set' id='w%u'><query xmlns='jabber:iq:register'>"
                            "<username>romeo</username><password>new-pw-%u</password>"
                            "</query></iq>", i, i);
  client_send (c, all->str);
  for (guint i = 0; i < PW_N; i++)
    {
      g_autofree char *id = g_strdup_printf ("w%u", i);
      gssize at = answer_at (c, id);
      g_assert_cmpint (at, >, prev);
      prev = at;
    }
  g_assert_null (strstr (c->in->str, "type='error'"));
  mynad_kill_restart (&f->d);
  g_autofree char *last = g_strdup_printf ("new-pw-%u", PW_N - 1);
  g_assert_true (can_login (f, "romeo", last));
}

/* XEP-0077 account removal, acknowledged, then a kill at once. */
static void
test_register_remove (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c = NULL;
  g_autofree char *out = NULL;

  mynad_add_user (&f->d, "romeo", PW);
  c = login (f, "romeo", "writer");
  client_send (c, "<iq type='set' id='rm'><query xmlns='jabber:iq:register'><remove/>"
                  "</query></iq>");
  g_assert_true (client_expect (c, "id='rm'"));
  g_assert_null (strstr (c->in->str, "type='error'"));
  mynad_kill_restart (&f->d);
  g_assert_false (can_login (f, "romeo", PW));
  g_assert_cmpint (mynactl (&f->d, &out, "user", "list", NULL), ==, 0);
  g_assert_null (strstr (out, "romeo@"));
}

/* mynactl user add, passwd, del: each answer comes once the change is
 * durable; the kill follows the last answer at once. */
static void
test_mynactl (Fixture *f, gconstpointer unused)
{
  g_autofree char *out = NULL;

  for (guint i = 0; i < 5; i++)
    {
      g_autofree char *jid = g_strdup_printf ("u%u@localhost", i);
      g_autofree char *o = NULL;
      g_assert_cmpint (mynactl_stdin (&f->d, PW "\n", &o, "user", "add", jid, NULL), ==, 0);
    }
  mynad_kill_restart (&f->d);
  for (guint i = 0; i < 5; i++)
    {
      g_autofree char *user = g_strdup_printf ("u%u", i);
      g_assert_true (can_login (f, user, PW));
    }
  g_assert_cmpint (mynactl_stdin (&f->d, "changed-pw\n", &out, "user", "passwd",
                                  "u0@localhost", NULL), ==, 0);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (mynactl (&f->d, &out, "user", "del", "u1@localhost", NULL), ==, 0);
  mynad_kill_restart (&f->d);
  g_assert_true (can_login (f, "u0", "changed-pw"));
  g_assert_false (can_login (f, "u1", PW));
}

/* ---- answers keep the order of the requests -------------------------------- */

/* Where the answer to @id starts in what the client received. */
static gssize
answer_at (Client *c, const char *id)
{
  g_autofree char *text = client_expect_iq (c, id);
  g_autofree char *needle = g_strdup_printf ("id='%s'", id);
  const char *at = strstr (c->in->str, needle);

  g_assert_nonnull (text);
  g_assert_nonnull (at);
  return at - c->in->str;
}

/* A set pipelined before a get is answered first (the get waits for the
 * set to be durable: it shows it), and the roster push comes before the
 * set's result. */
static void
test_order (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c = NULL;
  g_autofree char *roster = NULL;

  mynad_add_user (&f->d, "romeo", PW);
  c = login (f, "romeo", "writer");
  client_send (c, "<iq type='get' id='r0'><query xmlns='jabber:iq:roster'/></iq>");
  g_assert_true (client_expect_answer (c, "r0"));
  for (guint round = 0; round < 3; round++)
    {
      g_autofree char *batch = g_strdup_printf (
        "<iq type='set' id='rs%u'><query xmlns='jabber:iq:roster'>"
        "<item jid='o%u@example.net'/></query></iq>"
        "<iq type='get' id='rg%u'><query xmlns='jabber:iq:roster'/></iq>"
        "<iq type='set' id='vs%u'><vCard xmlns='vcard-temp'><FN>o%u</FN></vCard></iq>"
        "<iq type='get' id='vg%u'><vCard xmlns='vcard-temp'/></iq>"
        "<iq type='set' id='ps%u'><query xmlns='jabber:iq:private'>"
        "<x xmlns='urn:test:o'>o%u</x></query></iq>"
        "<iq type='get' id='pg%u'><query xmlns='jabber:iq:private'>"
        "<x xmlns='urn:test:o'/></query></iq>",
        round, round, round, round, round, round, round, round, round);
      g_autofree char *rs = g_strdup_printf ("rs%u", round), *rg = g_strdup_printf ("rg%u", round);
      g_autofree char *vs = g_strdup_printf ("vs%u", round), *vg = g_strdup_printf ("vg%u", round);
      g_autofree char *ps = g_strdup_printf ("ps%u", round), *pg = g_strdup_printf ("pg%u", round);
      g_autofree char *item = g_strdup_printf ("o%u@example.net", round);
      const char *p;

      g_string_truncate (c->in, 0);
      client_send (c, batch);
      g_assert_cmpint (answer_at (c, rs), <, answer_at (c, rg));
      g_assert_cmpint (answer_at (c, vs), <, answer_at (c, vg));
      g_assert_cmpint (answer_at (c, ps), <, answer_at (c, pg));
      p = strstr (c->in->str, "roster-push");
      g_assert_nonnull (p);
      g_assert_cmpint (p - c->in->str, <, answer_at (c, rs));
      g_clear_pointer (&roster, g_free);
      roster = client_expect_iq (c, rg);
      g_assert_true (roster_has (roster, item));
    }
}

/* ---- answers waiting behind writes are bounded ---------------------------- */

#define WAIT_ITEMS   1000  /* roster items, each with a 100-byte name */
#define WAIT_GETS    300   /* gets pipelined behind one set */
#define WAIT_MAX     100   /* [module:roster] max_waiting */
/* What mynad may grow by meanwhile.  Under AddressSanitizer freed memory
 * waits in its quarantine (256 MB by default) instead of being reused, so
 * the peak grows with what is allocated and freed, not with what is live:
 * there the bound only catches a runaway; the plain build checks 64 MB. */
#if defined(__SANITIZE_ADDRESS__)
#define WAIT_RSS_MB  320
#else
#define WAIT_RSS_MB  64
#endif
#define WAIT_BIG_GETS 2000 /* gets of a 60 KB vCard or private element */

static void
setup_waiting (Fixture *f, gconstpointer unused)
{
  /* Under AddressSanitizer freed memory waits in a quarantine of up to
   * 256 MB, which would hide any growth worth seeing: mynad gets a small
   * one (no effect on a mynad built without sanitizers). */
  g_autofree char *saved = g_strdup (g_getenv ("ASAN_OPTIONS"));
  g_autofree char *opts = g_strconcat (saved != NULL ? saved : "", saved != NULL ? ":" : "",
                                       "quarantine_size_mb=8", NULL);

  f->d.modules = MODULES;
  g_setenv ("ASAN_OPTIONS", opts, TRUE);
  mynad_start (&f->d, EXTRA "[module:roster]\nmax_waiting = " G_STRINGIFY (WAIT_MAX) "\n"
               "[module:vcard]\nmax_waiting = " G_STRINGIFY (WAIT_MAX) "\n"
               "[module:private]\nmax_waiting = " G_STRINGIFY (WAIT_MAX) "\n");
  if (saved != NULL)
    g_setenv ("ASAN_OPTIONS", saved, TRUE);
  else
    g_unsetenv ("ASAN_OPTIONS");
}

/* A memory figure ("VmRSS:", "VmHWM:") of mynad's /proc/PID/status, in KiB. */
static gint64
mynad_mem_kb (Mynad *d, const char *field)
{
  g_autofree char *path = g_strdup_printf ("/proc/%s/status",
                                           g_subprocess_get_identifier (d->proc));
  g_autofree char *text = NULL;
  const char *p;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  p = strstr (text, field);
  g_assert_nonnull (p);
  return g_ascii_strtoll (p + strlen (field), NULL, 10);
}

/* How many times @needle occurs in what @c received. */
static guint
count_in (Client *c, const char *needle)
{
  guint n = 0;

  for (const char *p = c->in->str; (p = strstr (p, needle)) != NULL; p += strlen (needle))
    n++;
  return n;
}

/* Reads until @needle occurred @want times in what @c received since the
 * input was last emptied; FALSE after WAIT_MS.  Scans each byte once. */
static gboolean
expect_count (Fixture *f, Client *c, const char *needle, guint want)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;
  gsize len = strlen (needle), at = 0;
  guint n = 0;

  for (;;)
    {
      const char *p;
      int left;

      while ((p = strstr (c->in->str + at, needle)) != NULL)
        {
          n++;
          at = (gsize) (p - c->in->str) + len;
        }
      if (n >= want)
        return TRUE;
      /* A needle cut by the end of what came so far starts after this. */
      if (c->in->len >= len)
        at = MAX (at, c->in->len - len + 1);
      /* mynad logs at debug level: keep its stderr pipe from filling. */
      mynad_log_drain (&f->d);
      left = (int) ((deadline - g_get_monotonic_time ()) / 1000);
      if (left <= 0 || c->eof)
        return FALSE;
      if (client_read (c, MIN (left, 50)))
        for (guint i = 0; i < 64 && !c->eof && client_read (c, 0); i++)
          ;
    }
}

/* A client pipelines one roster set and many gets of a big roster: the
 * gets wait for the set to be durable.  Waiting, they hold their request
 * and a view of the roster, not a built answer each; past max_waiting
 * they are refused at once with resource-constraint.  mynad's peak RSS
 * (VmHWM) grows by far less than one built roster per get. */
static void
test_waiting_bounded (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c = NULL;
  g_autoptr(GString) burst = g_string_new (NULL);
  g_autofree char *name = g_strnfill (100, 'n');
  gint64 rss0, hwm0, hwm1;
  guint refused, results;

  mynad_add_user (&f->d, "romeo", PW);
  c = login (f, "romeo", "writer");
  /* The roster, in batches the cap lets through. */
  for (guint i0 = 0; i0 < WAIT_ITEMS; i0 += 50)
    {
      g_autoptr(GString) sets = g_string_new (NULL);
      g_autofree char *last = NULL;

      for (guint i = i0; i < i0 + 50; i++)
        g_string_append_printf (sets, "<iq type='set' id='s%u'><query xmlns='jabber:iq:roster'>"
                                "<item jid='contact%u@example.org' name='%s'><group>g</group>"
                                "</item></query></iq>", i, i, name);
      last = g_strdup_printf ("s%u", i0 + 49);
      g_string_truncate (c->in, 0);
      client_send (c, sets->str);
      g_assert_true (client_expect_answer (c, last));
    }
  g_string_truncate (c->in, 0);
  client_send (c, "<iq type='get' id='r0'><query xmlns='jabber:iq:roster'/></iq>");
  g_assert_true (client_expect_answer (c, "r0"));
  g_string_truncate (c->in, 0);

  g_string_append (burst, "<iq type='set' id='x'><query xmlns='jabber:iq:roster'>"
                          "<item jid='z@example.org'/></query></iq>");
  for (guint i = 0; i < WAIT_GETS; i++)
    g_string_append_printf (burst, "<iq type='get' id='g%u'>"
                                   "<query xmlns='jabber:iq:roster'/></iq>", i);
  rss0 = mynad_mem_kb (&f->d, "VmRSS:");
  hwm0 = mynad_mem_kb (&f->d, "VmHWM:");
  client_send (c, burst->str);
  /* Every get is answered: a result or a refusal. */
  g_assert_true (expect_count (f, c, " id='g", WAIT_GETS));
  g_assert_true (client_expect_answer (c, "x"));
  hwm1 = mynad_mem_kb (&f->d, "VmHWM:");
  refused = count_in (c, "<resource-constraint");
  results = WAIT_GETS - refused;
  g_test_message ("%u gets behind a set, roster of %u: %u answered, %u refused; mynad VmRSS "
                  "%" G_GINT64_FORMAT " kB before, VmHWM %" G_GINT64_FORMAT " kB before, %"
                  G_GINT64_FORMAT " kB after", WAIT_GETS, WAIT_ITEMS, results, refused, rss0,
                  hwm0, hwm1);
  g_assert_cmpint (hwm1 - MAX (rss0, hwm0), <, WAIT_RSS_MB * 1024);
  g_assert_cmpuint (refused, >, 0);
  g_assert_cmpuint (results, >=, 1);
  /* The set's answer comes before every get's result (/durability/order). */
  g_assert_cmpint (strstr (c->in->str, "id='x'") - c->in->str, <,
                   strstr (c->in->str, "<query xmlns='jabber:iq:roster'><item") - c->in->str);
  /* The account is usable again: nothing is left waiting. */
  g_string_truncate (c->in, 0);
  client_send (c, "<iq type='get' id='after' ><query xmlns='jabber:iq:roster' ver='x'/></iq>");
  g_assert_true (client_expect_answer (c, "after"));
  g_assert_null (strstr (c->in->str, "resource-constraint"));
}

/* Sends @set (id 'x') then @n gets (of @payload, ids gN) in one write;
 * waits for every answer, or for the server to cut the client.  Asserts
 * mynad's peak RSS grew by less than WAIT_RSS_MB and that gets past
 * max_waiting were refused or, when the set was durable before they came
 * (then they are answered at once), that the output limit cut the client
 * (it reads slowly). */
static void
burst_bounded (Fixture *f, Client *c, const char *what, const char *set,
               const char *payload, guint n)
{
  g_autoptr(GString) burst = g_string_new (set);
  gint64 rss0, hwm0, hwm1;
  guint refused;

  for (guint i = 0; i < n; i++)
    g_string_append_printf (burst, "<iq type='get' id='g%u'>%s</iq>", i, payload);
  g_string_truncate (c->in, 0);
  rss0 = mynad_mem_kb (&f->d, "VmRSS:");
  hwm0 = mynad_mem_kb (&f->d, "VmHWM:");
  client_send (c, burst->str);
  if (!expect_count (f, c, " id='g", n) && !c->eof)
    g_error ("%u of %u %s gets answered; last received: %.300s", count_in (c, " id='g"),
             n, what, c->in->str + MAX (c->in->len, 300) - 300);
  hwm1 = mynad_mem_kb (&f->d, "VmHWM:");
  refused = count_in (c, "<resource-constraint");
  g_test_message ("%u %s gets behind a set: %u refused; mynad VmRSS %" G_GINT64_FORMAT
                  " kB before, VmHWM %" G_GINT64_FORMAT " kB before, %" G_GINT64_FORMAT
                  " kB after", n, what, refused, rss0, hwm0, hwm1);
  g_assert_cmpint (hwm1 - MAX (rss0, hwm0), <, WAIT_RSS_MB * 1024);
  if (c->eof)
    {
      g_assert_nonnull (strstr (c->in->str, "client is not reading"));
      return;
    }
  g_assert_cmpuint (refused, >, 0);
  g_assert_cmpuint (refused, <, n);
  g_assert_cmpint (strstr (c->in->str, "id='x'") - c->in->str, <,
                   strstr (c->in->str, "type='result'") - c->in->str);
}

/* The same for vCard and private storage: a 60 KB element, set once
 * more, then many gets of it. */
static void
test_waiting_bounded_vcard_private (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c = NULL;
  g_autofree char *big = g_strnfill (60000, 'A');
  g_autofree char *vset = g_strdup_printf ("<iq type='set' id='x'><vCard xmlns='vcard-temp'>"
                                           "<PHOTO><BINVAL>%s</BINVAL></PHOTO></vCard></iq>", big);
  g_autofree char *pset = g_strdup_printf ("<iq type='set' id='x'><query xmlns='jabber:iq:private'>"
                                           "<big xmlns='urn:test:big'>%s</big></query></iq>", big);
  g_autofree char *dup = NULL;

  mynad_add_user (&f->d, "romeo", PW);
  c = login (f, "romeo", "writer");
  client_send (c, vset);
  g_assert_true (client_expect_answer (c, "x"));
  burst_bounded (f, c, "vCard", vset, "<vCard xmlns='vcard-temp'/>", WAIT_BIG_GETS);
  if (c->eof)
    {
      g_clear_pointer (&c, client_free);
      c = login (f, "romeo", "writer");
    }
  burst_bounded (f, c, "private", pset,
                 "<query xmlns='jabber:iq:private'><big xmlns='urn:test:big'/></query>",
                 WAIT_BIG_GETS);
  /* A get naming one element several times gets it once. */
  g_clear_pointer (&c, client_free);
  c = login (f, "romeo", "writer");
  client_send (c, "<iq type='get' id='d'><query xmlns='jabber:iq:private'>"
                  "<big xmlns='urn:test:big'/><big xmlns='urn:test:big'/>"
                  "<big xmlns='urn:test:big'/></query></iq>");
  dup = client_expect_iq (c, "d");
  g_assert_nonnull (dup);
  g_assert_nonnull (strstr (dup, big));
  g_assert_null (strstr (strstr (dup, big) + 1, big));
}

/* ---- a deleted account leaves nothing to its successor ----------------------- */

/* Rows of @user in the database: key–value entries outside the account's
 * credentials, and archive items.  Read after a kill, on a copy of the
 * committed state, as a second mynad would see it. */
static guint
count_rows (Fixture *f, const char *sql, const char *arg)
{
  g_autofree char *path = g_build_filename (f->d.dir, "myna.db", NULL);
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  guint n = 0;

  g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
  sqlite3_bind_text (stmt, 1, arg, -1, SQLITE_STATIC);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  n = (guint) sqlite3_column_int (stmt, 0);
  sqlite3_finalize (stmt);
  sqlite3_close (db);
  return n;
}

static guint
rows_of (Fixture *f, const char *user)
{
  return count_rows (f, "SELECT (SELECT count(*) FROM kv WHERE user = ?1 AND store != 'account')"
                        " + (SELECT count(*) FROM archive_owner WHERE user = ?1)"
                        " + (SELECT count(*) FROM archive"
                        "    WHERE owner NOT IN (SELECT owner FROM archive_owner))", user);
}

static void
test_delete_leaves_nothing (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) juliet = NULL;
  g_autoptr(Client) romeo = NULL;
  g_autoptr(Client) newromeo = NULL;
  g_autofree char *out = NULL;
  g_autofree char *got = NULL;

  mynad_add_user (&f->d, "romeo", PW);
  mynad_add_user (&f->d, "juliet", PW);
  mynad_add_user (&f->d, "nurse", PW);

  /* Juliet pre-approves romeo (RFC 6121 §3.4). */
  juliet = login (f, "juliet", "balcony");
  client_send (juliet, "<iq type='get' id='j0'><query xmlns='jabber:iq:roster'/></iq>");
  g_assert_true (client_expect (juliet, "id='j0'"));
  client_send (juliet, "<presence type='subscribed' to='romeo@localhost'/>");
  g_assert_true (client_expect (juliet, "approved='true'"));

  /* Romeo fills every store: roster, vCard, private, blocking; the nurse
   * leaves him an offline message; his logout is his last activity. */
  romeo = login (f, "romeo", "garden");
  client_send (romeo, "<iq type='get' id='a0'><query xmlns='jabber:iq:roster'/></iq>"
                      "<iq type='set' id='a1'><query xmlns='jabber:iq:roster'>"
                      "<item jid='mercutio@example.net'/></query></iq>"
                      "<iq type='set' id='a2'><vCard xmlns='vcard-temp'><FN>R</FN></vCard></iq>"
                      "<iq type='set' id='a3'><query xmlns='jabber:iq:private'>"
                      "<x xmlns='urn:test:x'>kept</x></query></iq>"
                      "<iq type='set' id='a4'><block xmlns='urn:xmpp:blocking'>"
                      "<item jid='tybalt@example.net'/></block></iq>"
                      "<presence type='subscribed' to='nurse@localhost'/>"
                      "<presence/><presence type='unavailable'/>"
                      "<iq type='get' id='a5'><ping xmlns='urn:xmpp:ping'/></iq>");
  g_assert_true (client_expect_answer (romeo, "a4"));
  g_assert_true (client_expect_answer (romeo, "a5"));
  g_assert_true (client_expect (romeo, "approved='true'"));
  /* Pushed, so durable: juliet's note under romeo, romeo's under the nurse. */
  g_assert_cmpuint (count_rows (f, "SELECT count(*) FROM kv WHERE store = 'roster/roster-approved-by'"
                                   " AND (user = 'romeo' OR key = ?1)", "romeo@localhost"), ==, 2);
  g_clear_pointer (&romeo, client_free);
  {
    g_autoptr(Client) nurse = login (f, "nurse", "door");
    client_send (nurse, "<message to='romeo@localhost' type='chat'><body>hi</body></message>"
                        "<iq type='get' id='n1'><ping xmlns='urn:xmpp:ping'/></iq>");
    g_assert_true (client_expect (nurse, "id='n1'"));
  }

  g_assert_cmpint (mynactl (&f->d, &out, "user", "del", "romeo@localhost", NULL), ==, 0);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (mynactl_stdin (&f->d, "other-pw\n", &out, "user", "add", "romeo@localhost",
                                  NULL), ==, 0);
  /* The kill makes the database file what a restart would read. */
  mynad_kill_restart (&f->d);
  g_assert_cmpuint (rows_of (f, "romeo"), ==, 0);
  /* Nor does what others keep about romeo's: his pre-approval of the nurse
   * went with his roster, juliet's of him with his account. */
  g_assert_cmpuint (count_rows (f, "SELECT count(*) FROM kv WHERE store = 'roster/roster-approved-by'"
                                   " AND (user = 'romeo' OR key = ?1)", "romeo@localhost"), ==, 0);

  /* The new romeo inherits no pre-approval: juliet is asked. */
  g_clear_pointer (&juliet, client_free);
  juliet = login (f, "juliet", "balcony");
  client_send (juliet, "<iq type='get' id='j1'><query xmlns='jabber:iq:roster'/></iq><presence/>");
  got = client_expect_iq (juliet, "j1");
  g_assert_nonnull (got);
  g_assert_null (strstr (got, "approved="));
  newromeo = client_login (&f->d, "romeo", "other-pw", "new");
  g_assert_nonnull (newromeo);
  client_send (newromeo, "<iq type='get' id='n0'><query xmlns='jabber:iq:roster'/></iq>");
  g_clear_pointer (&got, g_free);
  got = client_expect_iq (newromeo, "n0");
  g_assert_nonnull (got);
  g_assert_null (strstr (got, "<item"));
  client_send (newromeo, "<presence type='subscribe' to='juliet@localhost'/>");
  g_assert_true (client_expect (juliet, "type='subscribe'"));
  client_send (newromeo, "<iq type='get' id='n2'><ping xmlns='urn:xmpp:ping'/></iq>");
  g_assert_true (client_expect (newromeo, "id='n2'"));
  g_assert_null (strstr (newromeo->in->str, "type='subscribed'"));
}

/* ---- multi-user chat: affiliations of a persistent room ------------------------ */

#define MUC_ROOM "lounge@conference.localhost"

static void
setup_muc (Fixture *f, gconstpointer unused)
{
  f->d.modules = MODULES;
  mynad_start (&f->d, EXTRA "[component:conference.localhost]\nmodule = muc\n");
}

static char *
make_member (guint i)
{
  return g_strdup_printf ("<iq type='set' id='w%u' to='" MUC_ROOM "'>"
                          "<query xmlns='http://jabber.org/protocol/muc#admin'>"
                          "<item affiliation='member' jid='m%u@example.net'/></query></iq>", i, i);
}

/* The owner's muc#admin sets are answered once the room is on disk: every
 * member acknowledged before the kill is on the member list after it. */
static void
test_muc_affiliations (Fixture *f, gconstpointer unused)
{
  g_autofree char *out = NULL;

  mynad_add_user (&f->d, "romeo", PW);
  g_assert_cmpint (mynactl (&f->d, &out, "muc", "create", MUC_ROOM, "--persistent",
                            "--owner", "romeo@localhost", NULL), ==, 0);
  for (guint cycle = 0; cycle < CYCLES; cycle++)
    {
      g_autofree gboolean *acked = pipeline_and_kill (f, "romeo", make_member);
      g_autoptr(Client) c = login (f, "romeo", "check");
      g_autofree char *list = NULL;
      guint lost = 0, acks = 0;

      client_send (c, "<iq type='get' id='mget' to='" MUC_ROOM "'>"
                      "<query xmlns='http://jabber.org/protocol/muc#admin'>"
                      "<item affiliation='member'/></query></iq>");
      list = client_expect_iq (c, "mget");
      g_assert_nonnull (list);
      for (guint i = 0; i < IQ_N; i++)
        {
          g_autofree char *jid = g_strdup_printf ("m%u@example.net", i);

          acks += acked[i];
          if (acked[i] && !roster_has (list, jid))
            lost++;
        }
      g_test_message ("cycle %u: %u member sets acknowledged before the kill, %u lost",
                      cycle, acks, lost);
      g_assert_cmpuint (lost, ==, 0);
      /* The next cycle sets them again from none. */
      for (guint i = 0; i < IQ_N; i++)
        {
          g_autofree char *none = g_strdup_printf (
              "<iq type='set' id='n%u' to='" MUC_ROOM "'>"
              "<query xmlns='http://jabber.org/protocol/muc#admin'>"
              "<item affiliation='none' jid='m%u@example.net'/></query></iq>", i, i);
          client_send (c, none);
        }
      /* mynad logs each change: its stderr is read meanwhile, so that it
       * never blocks on a full pipe (the next cycle's answers with it) */
      g_autofree char *last = g_strdup_printf ("id='n%u'", IQ_N - 1);
      gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;
      while (strstr (c->in->str, last) == NULL && g_get_monotonic_time () < deadline && !c->eof)
        {
          mynad_log_drain (&f->d);
          client_read (c, 100);
        }
      g_assert_nonnull (strstr (c->in->str, last));
      mynad_log_drain (&f->d);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, func) g_test_add (path, Fixture, NULL, setup, func, teardown)
  ADD ("/durability/roster", test_roster);
  ADD ("/durability/subscription", test_subscription);
  ADD ("/durability/vcard", test_vcard);
  ADD ("/durability/private", test_private);
  ADD ("/durability/blocking", test_blocking);
  ADD ("/durability/register-password", test_register_password);
  ADD ("/durability/register-password-order", test_register_password_order);
  ADD ("/durability/register-remove", test_register_remove);
  ADD ("/durability/mynactl", test_mynactl);
  ADD ("/durability/order", test_order);
  ADD ("/durability/delete-leaves-nothing", test_delete_leaves_nothing);
  g_test_add ("/durability/muc-affiliations", Fixture, NULL, setup_muc,
              test_muc_affiliations, teardown);
  g_test_add ("/durability/waiting-bounded", Fixture, NULL, setup_waiting,
              test_waiting_bounded, teardown);
  g_test_add ("/durability/waiting-bounded-vcard-private", Fixture, NULL, setup_waiting,
              test_waiting_bounded_vcard_private, teardown);
  return g_test_run ();
}
