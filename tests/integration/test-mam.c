/* test-mam: XEP-0313 message archive management against a real mynad
 * with the mam module — both directions archived with a XEP-0359
 * stanza-id (a spoofed one removed), offline messages archived, queries
 * by with, start and end, before-id/after-id/ids, RSM paging forward and
 * backward with <fin complete/>, preferences never/always/roster-less
 * lists, retention (a short archive_expires_after), bad forms, disco and
 * account deletion.
 *
 * A query's answer is read up to its <iq/> result, then its <result/>s are
 * taken apart in order (ids, bodies). */
#include "mynad-harness.h"

#include <sys/socket.h>

#define MODULES "disco;ping;version;auth;bind;roster;presence;offline;mam"

typedef struct {
  Mynad d;
} Fixture;

static guint serial;

static void
setup (Fixture *f, gconstpointer extra)
{
  g_autofree char *conf = g_strconcat (MYNAD_PLAIN_AUTH, extra != NULL ? (const char *) extra : "",
                                       NULL);

  f->d.modules = MODULES;
  mynad_start (&f->d, conf);
  mynad_add_user (&f->d, "alice", "pw-alice");
  mynad_add_user (&f->d, "bob", "pw-bob");
  mynad_add_user (&f->d, "carol", "pw-carol");
}

static void
teardown (Fixture *f, gconstpointer unused)
{
  g_assert_cmpint (mynad_stop (&f->d), ==, 0);
}

static Client *
login (Fixture *f, const char *user)
{
  g_autofree char *pw = g_strconcat ("pw-", user, NULL);
  Client *c = client_login (&f->d, user, pw, "r");

  g_assert_nonnull (c);
  return c;
}

/* Waits (bounded) until the input holds @needle, then cuts everything up
 * to the end of the first "</iq>" or "/>" closing the stanza holding it.
 * Returns: (transfer full) what was cut, or NULL on timeout */
static char *
take_until (Client *c, const char *needle, const char *end)
{
  const char *p, *e;
  char *out;

  if (!client_expect (c, needle))
    return NULL;
  p = strstr (c->in->str, needle);
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;
  while ((e = strstr (strstr (c->in->str, needle), end)) == NULL && !c->eof)
    {
      int left = (int) ((deadline - g_get_monotonic_time ()) / 1000);
      if (left <= 0 || !client_read (c, left))
        return NULL;
    }
  if (e == NULL)
    return NULL;
  p = c->in->str;
  out = g_strndup (p, (gsize) (e - p) + strlen (end));
  g_string_erase (c->in, 0, (gssize) ((e - p) + strlen (end)));
  return out;
}

/* A ping round trip, then forgets everything received. */
static void
drain (Client *c)
{
  g_autofree char *id = g_strdup_printf ("sync-%u", ++serial);
  g_autofree char *ping = g_strdup_printf ("<iq type='get' id='%s' to='localhost'>"
                                           "<ping xmlns='urn:xmpp:ping'/></iq>", id);
  g_autofree char *needle = g_strdup_printf ("id='%s'", id);

  client_send (c, ping);
  g_assert_true (client_expect (c, needle));
  g_string_truncate (c->in, 0);
}

/* A query's outcome. */
typedef struct {
  char      *raw;       /* everything up to the iq answer */
  GPtrArray *ids;       /* result ids, in order */
  GPtrArray *bodies;    /* the bodies, in order */
  gboolean   complete;
  gboolean   error;
  char      *condition; /* the error's condition element, e.g. "item-not-found" */
} Answer;

static void
answer_clear (Answer *a)
{
  g_free (a->raw);
  g_clear_pointer (&a->ids, g_ptr_array_unref);
  g_clear_pointer (&a->bodies, g_ptr_array_unref);
  g_free (a->condition);
  memset (a, 0, sizeof *a);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Answer, answer_clear)

/* Appends every match of @pattern's group 1 in @text to @into. */
static void
grab_all (const char *pattern, const char *text, GPtrArray *into)
{
  g_autoptr(GRegex) re = g_regex_new (pattern, 0, 0, NULL);
  g_autoptr(GMatchInfo) m = NULL;

  g_regex_match (re, text, 0, &m);
  while (g_match_info_matches (m))
    {
      g_ptr_array_add (into, g_match_info_fetch (m, 1));
      g_match_info_next (m, NULL);
    }
}

/* Sends a MAM query with @form_fields (<field/>s, or "") and @rsm (the
 * children of <set/>, or NULL for none) and reads the answer into @a. */
static void
query (Client *c, const char *form_fields, const char *rsm, Answer *a)
{
  g_autofree char *id = g_strdup_printf ("q%u", ++serial);
  g_autofree char *set = rsm != NULL
    ? g_strdup_printf ("<set xmlns='http://jabber.org/protocol/rsm'>%s</set>", rsm)
    : g_strdup ("");
  g_autofree char *iq = g_strdup_printf (
    "<iq type='set' id='%s'><query xmlns='urn:xmpp:mam:2' queryid='qid-%s'>"
    "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>"
    "<value>urn:xmpp:mam:2</value></field>%s</x>%s</query></iq>",
    id, id, form_fields, set);
  g_autofree char *needle = g_strdup_printf ("id='%s'", id);
  g_autofree char *qidattr = g_strdup_printf ("queryid='qid-%s'", id);

  answer_clear (a);
  drain (c);
  client_send (c, iq);
  /* The iq answer is the last stanza of the query. */
  a->raw = take_until (c, needle, "</iq>");
  g_assert_nonnull (a->raw);
  a->ids = g_ptr_array_new_with_free_func (g_free);
  a->bodies = g_ptr_array_new_with_free_func (g_free);
  grab_all ("<result xmlns='urn:xmpp:mam:2' queryid='[^']*' id='([^']+)'", a->raw, a->ids);
  grab_all ("<body>([^<]*)</body>", a->raw, a->bodies);
  a->error = strstr (a->raw, "type='error'") != NULL;
  a->complete = strstr (a->raw, "complete='true'") != NULL;
  if (a->error)
    {
      g_autoptr(GPtrArray) conds = g_ptr_array_new_with_free_func (g_free);
      grab_all ("<([a-z-]+) xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'", a->raw, conds);
      a->condition = conds->len > 0 ? g_strdup (conds->pdata[0]) : NULL;
    }
  else
    {
      /* Each result carries the query's id; the fin too. */
      g_assert_nonnull (strstr (a->raw, "<fin xmlns='urn:xmpp:mam:2'"));
      if (a->ids->len > 0)
        g_assert_nonnull (strstr (a->raw, qidattr));
    }
}

/* Sends a chat message and waits until @to's client has it (when given). */
static void
chat (Client *from, const char *to, const char *body, Client *receiver)
{
  g_autofree char *m = g_strdup_printf ("<message type='chat' to='%s@localhost'><body>%s</body>"
                                        "</message>", to, body);
  g_autofree char *needle = g_strdup_printf ("<body>%s</body>", body);

  client_send (from, m);
  if (receiver != NULL)
    g_assert_true (client_expect (receiver, needle));
}

static void
assert_strings (GPtrArray *got, ...)
{
  va_list ap;
  guint i = 0;

  va_start (ap, got);
  for (const char *s = va_arg (ap, const char *); s != NULL; s = va_arg (ap, const char *), i++)
    {
      g_assert_cmpuint (i, <, got->len);
      g_assert_cmpstr (got->pdata[i], ==, s);
    }
  va_end (ap);
  g_assert_cmpuint (got->len, ==, i);
}

/* ---- tests ------------------------------------------------------------------ */

/* A message between two online accounts: the recipient's copy gets a
 * stanza-id by its bare JID (a spoofed one is removed), and each archive
 * holds the message, the recipient's under that id. */
static void
test_both_ways (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) alice = login (f, "alice");
  g_autoptr(Client) bob = login (f, "bob");
  g_auto(Answer) a = { 0 };
  g_autoptr(GPtrArray) sids = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *got = NULL;

  client_send (bob, "<presence/>");
  drain (bob);
  client_send (alice, "<message type='chat' to='bob@localhost' id='m1'><body>hello bob</body>"
                      "<stanza-id xmlns='urn:xmpp:sid:0' by='bob@localhost' id='spoofed'/>"
                      "<stanza-id xmlns='urn:xmpp:sid:0' by='elsewhere.example' id='kept'/>"
                      "</message>");
  got = take_until (bob, "hello bob", "</message>");
  g_assert_nonnull (got);
  g_assert_null (strstr (got, "spoofed"));
  g_assert_nonnull (strstr (got, "id='kept'"));
  grab_all ("<stanza-id xmlns='urn:xmpp:sid:0' by='bob@localhost' id='([^']+)'", got, sids);
  g_assert_cmpuint (sids->len, ==, 1);

  query (bob, "", NULL, &a);
  g_assert_false (a.error);
  assert_strings (a.ids, sids->pdata[0], NULL);
  assert_strings (a.bodies, "hello bob", NULL);
  g_assert_true (a.complete);
  g_assert_nonnull (strstr (a.raw, "from='alice@localhost/r'"));
  g_assert_nonnull (strstr (a.raw, "<delay xmlns='urn:xmpp:delay' stamp='"));
  g_assert_nonnull (strstr (a.raw, "<forwarded xmlns='urn:xmpp:forward:0'>"));

  query (alice, "", NULL, &a);
  g_assert_false (a.error);
  g_assert_cmpuint (a.ids->len, ==, 1);
  assert_strings (a.bodies, "hello bob", NULL);

  /* Not archived: chat states alone, no-store hints, headlines, errors. */
  client_send (alice, "<message type='chat' to='bob@localhost'><active "
                      "xmlns='http://jabber.org/protocol/chatstates'/></message>");
  client_send (alice, "<message type='chat' to='bob@localhost'><body>secret</body>"
                      "<no-store xmlns='urn:xmpp:hints'/></message>");
  client_send (alice, "<message type='headline' to='bob@localhost'><body>news</body></message>");
  /* Archived: an OMEMO payload without a body. */
  client_send (alice, "<message type='chat' to='bob@localhost'><encrypted "
                      "xmlns='eu.siacs.conversations.axolotl'><payload>x</payload></encrypted>"
                      "</message>");
  g_assert_true (client_expect (bob, "<payload>x</payload>"));
  query (bob, "", NULL, &a);
  g_assert_cmpuint (a.ids->len, ==, 2);
  assert_strings (a.bodies, "hello bob", NULL);
  g_assert_nonnull (strstr (a.raw, "eu.siacs.conversations.axolotl"));
  query (alice, "", NULL, &a);
  g_assert_cmpuint (a.ids->len, ==, 2);
}

/* A message to an offline account is archived (with its stanza-id) and
 * stored offline; the stored one carries the same stanza-id. */
static void
test_offline (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) alice = login (f, "alice");
  g_autoptr(Client) bob = NULL;
  g_auto(Answer) a = { 0 };
  g_autofree char *got = NULL;
  g_autofree char *sid = NULL;

  chat (alice, "bob", "while you were out", NULL);
  drain (alice);
  bob = login (f, "bob");
  query (bob, "", NULL, &a);
  g_assert_cmpuint (a.ids->len, ==, 1);
  assert_strings (a.bodies, "while you were out", NULL);
  client_send (bob, "<presence/>");
  got = take_until (bob, "while you were out", "</message>");
  g_assert_nonnull (got);
  sid = g_strdup_printf ("by='bob@localhost' id='%s'", (char *) a.ids->pdata[0]);
  g_assert_nonnull (strstr (got, sid));
  g_assert_nonnull (strstr (got, "Offline Storage"));
}

/* Five messages: three to bob, two to carol, alternately; filters. */
static void
fill (Fixture *f, Client *alice, Answer *all)
{
  static const char *const to[] = { "bob", "carol", "bob", "carol", "bob" };

  for (guint i = 0; i < G_N_ELEMENTS (to); i++)
    {
      g_autofree char *body = g_strdup_printf ("m%u", i);
      chat (alice, to[i], body, NULL);
    }
  drain (alice);
  query (alice, "", NULL, all);
  assert_strings (all->bodies, "m0", "m1", "m2", "m3", "m4", NULL);
}

static void
test_filters (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) alice = login (f, "alice");
  g_auto(Answer) all = { 0 };
  g_auto(Answer) a = { 0 };
  g_autofree char *now = NULL;
  g_autoptr(GDateTime) t = g_date_time_new_now_utc ();
  g_autoptr(GDateTime) later = g_date_time_add_hours (t, 1);
  g_autofree char *later_s = g_date_time_format_iso8601 (later);

  fill (f, alice, &all);
  query (alice, "<field var='with'><value>carol@localhost</value></field>", NULL, &a);
  assert_strings (a.bodies, "m1", "m3", NULL);
  g_assert_true (a.complete);
  /* A full JID filters by its bare JID's messages here. */
  query (alice, "<field var='with'><value>bob@localhost</value></field>", NULL, &a);
  assert_strings (a.bodies, "m0", "m2", "m4", NULL);

  query (alice, "<field var='start'><value>2000-01-01T00:00:00Z</value></field>", NULL, &a);
  g_assert_cmpuint (a.ids->len, ==, 5);
  query (alice, "<field var='end'><value>2000-01-01T00:00:00Z</value></field>", NULL, &a);
  g_assert_cmpuint (a.ids->len, ==, 0);
  g_assert_true (a.complete);
  now = g_strdup_printf ("<field var='start'><value>%s</value></field>", later_s);
  query (alice, now, NULL, &a);
  g_assert_cmpuint (a.ids->len, ==, 0);
  g_free (now);
  now = g_strdup_printf ("<field var='start'><value>2000-01-01T00:00:00Z</value></field>"
                         "<field var='end'><value>%s</value></field>"
                         "<field var='with'><value>carol@localhost</value></field>", later_s);
  query (alice, now, NULL, &a);
  assert_strings (a.bodies, "m1", "m3", NULL);
}

/* before-id, after-id and ids (urn:xmpp:mam:2#extended). */
static void
test_ids (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) alice = login (f, "alice");
  g_auto(Answer) all = { 0 };
  g_auto(Answer) a = { 0 };
  g_autofree char *form = NULL;
  char **id;

  fill (f, alice, &all);
  id = (char **) all.ids->pdata;
  form = g_strdup_printf ("<field var='after-id'><value>%s</value></field>", id[1]);
  query (alice, form, NULL, &a);
  assert_strings (a.bodies, "m2", "m3", "m4", NULL);
  g_free (form);
  form = g_strdup_printf ("<field var='before-id'><value>%s</value></field>", id[3]);
  query (alice, form, NULL, &a);
  assert_strings (a.bodies, "m0", "m1", "m2", NULL);
  g_assert_true (a.complete);
  g_free (form);
  form = g_strdup_printf ("<field var='after-id'><value>%s</value></field>"
                          "<field var='before-id'><value>%s</value></field>", id[1], id[3]);
  query (alice, form, NULL, &a);
  assert_strings (a.bodies, "m2", NULL);
  g_free (form);
  form = g_strdup_printf ("<field var='ids'><value>%s</value><value>%s</value></field>",
                          id[4], id[0]);
  query (alice, form, NULL, &a);
  assert_strings (a.bodies, "m0", "m4", NULL);

  /* An id the archive does not hold. */
  query (alice, "<field var='after-id'><value>0000000000001</value></field>", NULL, &a);
  g_assert_true (a.error);
  g_assert_cmpstr (a.condition, ==, "item-not-found");
  query (alice, "<field var='before-id'><value>not-an-id</value></field>", NULL, &a);
  g_assert_cmpstr (a.condition, ==, "item-not-found");
  query (alice, "", "<max>2</max><after>nope</after>", &a);
  g_assert_cmpstr (a.condition, ==, "item-not-found");
}

/* RSM pages forward (after) and backward (before, empty for the last
 * page), with <first/>, <last/> and <fin complete/>. */
static void
test_rsm (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) alice = login (f, "alice");
  g_auto(Answer) all = { 0 };
  g_auto(Answer) a = { 0 };
  g_autofree char *rsm = NULL;
  g_autofree char *first_last = NULL;
  char **id;

  fill (f, alice, &all);
  id = (char **) all.ids->pdata;

  query (alice, "", "<max>2</max>", &a);
  assert_strings (a.bodies, "m0", "m1", NULL);
  g_assert_false (a.complete);
  first_last = g_strdup_printf ("<first>%s</first><last>%s</last>", id[0], id[1]);
  g_assert_nonnull (strstr (a.raw, first_last));
  rsm = g_strdup_printf ("<max>2</max><after>%s</after>", id[1]);
  query (alice, "", rsm, &a);
  assert_strings (a.bodies, "m2", "m3", NULL);
  g_assert_false (a.complete);
  g_free (rsm);
  rsm = g_strdup_printf ("<max>2</max><after>%s</after>", id[3]);
  query (alice, "", rsm, &a);
  assert_strings (a.bodies, "m4", NULL);
  g_assert_true (a.complete);

  /* Backward from the end. */
  query (alice, "", "<max>2</max><before/>", &a);
  assert_strings (a.bodies, "m3", "m4", NULL);
  g_assert_false (a.complete);
  g_free (rsm);
  rsm = g_strdup_printf ("<max>2</max><before>%s</before>", id[3]);
  query (alice, "", rsm, &a);
  assert_strings (a.bodies, "m1", "m2", NULL);
  g_assert_false (a.complete);
  g_free (rsm);
  rsm = g_strdup_printf ("<max>2</max><before>%s</before>", id[1]);
  query (alice, "", rsm, &a);
  assert_strings (a.bodies, "m0", NULL);
  g_assert_true (a.complete);

  /* Paging inside a filter, and the count alone with max 0. */
  g_free (rsm);
  rsm = g_strdup_printf ("<max>1</max><after>%s</after>", id[0]);
  query (alice, "<field var='with'><value>bob@localhost</value></field>", rsm, &a);
  assert_strings (a.bodies, "m2", NULL);
  g_assert_false (a.complete);
  query (alice, "<field var='with'><value>bob@localhost</value></field>", "<max>0</max>", &a);
  g_assert_cmpuint (a.ids->len, ==, 0);
  g_assert_nonnull (strstr (a.raw, "<count>3</count>"));
  /* flip-page: the same page, newest first. */
  client_send (alice, "<iq type='set' id='flip'><query xmlns='urn:xmpp:mam:2'>"
                      "<set xmlns='http://jabber.org/protocol/rsm'><max>2</max></set>"
                      "<flip-page/></query></iq>");
  g_autofree char *flipped = take_until (alice, "id='flip'", "</iq>");
  g_assert_nonnull (flipped);
  /* The bodies, not just "m1": an archive id may hold those letters too. */
  g_assert_nonnull (strstr (flipped, ">m1</body>"));
  g_assert_nonnull (strstr (flipped, ">m0</body>"));
  g_assert_true (strstr (flipped, ">m1</body>") < strstr (flipped, ">m0</body>"));
}

/* Preferences: never keeps nothing, a never list keeps that JID out,
 * always the rest; get answers what was set. */
static void
test_prefs (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) alice = login (f, "alice");
  g_autoptr(Client) bob = login (f, "bob");
  g_auto(Answer) a = { 0 };
  g_autofree char *got = NULL;

  client_send (alice, "<presence/>");
  client_send (bob, "<presence/>");
  drain (alice);
  drain (bob);
  client_send (alice, "<iq type='get' id='p0'><prefs xmlns='urn:xmpp:mam:2'/></iq>");
  got = take_until (alice, "id='p0'", "</iq>");
  g_assert_nonnull (strstr (got, "default='always'"));
  g_clear_pointer (&got, g_free);

  client_send (alice, "<iq type='set' id='p1'><prefs xmlns='urn:xmpp:mam:2' default='never'/>"
                      "</iq>");
  got = take_until (alice, "id='p1'", "</iq>");
  g_assert_nonnull (strstr (got, "type='result'"));
  g_assert_nonnull (strstr (got, "default='never'"));
  g_clear_pointer (&got, g_free);
  chat (alice, "bob", "not kept", bob);
  query (alice, "", NULL, &a);
  g_assert_cmpuint (a.ids->len, ==, 0);
  /* bob's own preference (always) keeps his copy. */
  query (bob, "", NULL, &a);
  assert_strings (a.bodies, "not kept", NULL);

  client_send (alice, "<iq type='set' id='p2'><prefs xmlns='urn:xmpp:mam:2' default='always'>"
                      "<always/><never><jid>carol@localhost</jid></never></prefs></iq>");
  got = take_until (alice, "id='p2'", "</iq>");
  g_assert_nonnull (strstr (got, "<jid>carol@localhost</jid>"));
  g_clear_pointer (&got, g_free);
  chat (alice, "carol", "to carol", NULL);
  chat (alice, "bob", "to bob", bob);
  chat (bob, "alice", "from bob", alice);
  query (alice, "", NULL, &a);
  assert_strings (a.bodies, "to bob", "from bob", NULL);

  client_send (alice, "<iq type='get' id='p3'><prefs xmlns='urn:xmpp:mam:2'/></iq>");
  got = take_until (alice, "id='p3'", "</iq>");
  g_assert_nonnull (strstr (got, "default='always'"));
  g_assert_nonnull (strstr (got, "<never><jid>carol@localhost</jid></never>"));
  g_clear_pointer (&got, g_free);

  client_send (alice, "<iq type='set' id='p4'><prefs xmlns='urn:xmpp:mam:2' default='sometimes'/>"
                      "</iq>");
  got = take_until (alice, "id='p4'", "</iq>");
  g_assert_nonnull (strstr (got, "bad-request"));
}

/* Retention: with archive_expires_after = 2s, the sweep (which runs on the
 * storage's writer thread) empties the archive; waits sweep by sweep. */
static void
test_expiry (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) alice = login (f, "alice");
  g_auto(Answer) a = { 0 };
  gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

  chat (alice, "bob", "short-lived", NULL);
  drain (alice);
  query (alice, "", NULL, &a);
  g_assert_cmpuint (a.ids->len, ==, 1);
  for (;;)
    {
      g_string_truncate (f->d.log, 0);
      g_assert_true (mynad_wait_log (&f->d, "archive expiry of localhost done", WAIT_MS));
      query (alice, "", NULL, &a);
      if (a.ids->len == 0)
        break;
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
    }
  g_assert_true (a.complete);
}

/* Bad queries get bad-request (a clear text), someone else's archive
 * forbidden; <query/> get answers the form. */
static void
test_bad_form (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) alice = login (f, "alice");
  g_auto(Answer) a = { 0 };
  g_autofree char *got = NULL;

  client_send (alice, "<iq type='set' id='b1'><query xmlns='urn:xmpp:mam:2'>"
                      "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>"
                      "<value>urn:xmpp:mam:1</value></field></x></query></iq>");
  got = take_until (alice, "id='b1'", "</iq>");
  g_assert_nonnull (strstr (got, "<bad-request"));
  g_clear_pointer (&got, g_free);
  query (alice, "<field var='start'><value>yesterday</value></field>", NULL, &a);
  g_assert_cmpstr (a.condition, ==, "bad-request");
  query (alice, "<field var='colour'><value>blue</value></field>", NULL, &a);
  g_assert_cmpstr (a.condition, ==, "bad-request");
  query (alice, "<field var='with'><value>@@</value></field>", NULL, &a);
  g_assert_cmpstr (a.condition, ==, "bad-request");
  query (alice, "", "<max>lots</max>", &a);
  g_assert_cmpstr (a.condition, ==, "bad-request");
  g_assert_true (mynad_wait_log (&f->d, "archive query of alice@localhost/r refused", WAIT_MS));

  client_send (alice, "<iq type='set' id='b2' to='bob@localhost'><query xmlns='urn:xmpp:mam:2'/>"
                      "</iq>");
  got = take_until (alice, "id='b2'", "</iq>");
  g_assert_nonnull (strstr (got, "<forbidden"));
  g_clear_pointer (&got, g_free);

  client_send (alice, "<iq type='get' id='b3'><query xmlns='urn:xmpp:mam:2'/></iq>");
  got = take_until (alice, "id='b3'", "</iq>");
  g_assert_nonnull (strstr (got, "type='result'"));
  g_assert_nonnull (strstr (got, "var='after-id'"));
  g_assert_nonnull (strstr (got, "<value>urn:xmpp:mam:2</value>"));
}

/* Disco at the account's bare JID lists MAM and stanza ids; a deleted
 * account's archive is gone when the name is registered again. */
static void
test_disco_and_delete (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) alice = login (f, "alice");
  g_autoptr(Client) bob = NULL;
  g_auto(Answer) a = { 0 };
  g_autofree char *got = NULL;
  g_autofree char *out = NULL;

  client_send (alice, "<iq type='get' id='d1' to='alice@localhost'><query "
                      "xmlns='http://jabber.org/protocol/disco#info'/></iq>");
  got = take_until (alice, "id='d1'", "</iq>");
  g_assert_nonnull (strstr (got, "var='urn:xmpp:mam:2'"));
  g_assert_nonnull (strstr (got, "var='urn:xmpp:mam:2#extended'"));
  g_assert_nonnull (strstr (got, "var='urn:xmpp:sid:0'"));

  chat (alice, "bob", "before deletion", NULL);
  drain (alice);
  g_assert_cmpint (mynactl (&f->d, &out, "user", "del", "bob@localhost", NULL), ==, 0);
  g_assert_true (mynad_wait_log (&f->d, "message archive of bob@localhost deleted", WAIT_MS));
  mynad_add_user (&f->d, "bob", "pw-bob");
  bob = login (f, "bob");
  query (bob, "", NULL, &a);
  g_assert_cmpuint (a.ids->len, ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/mam/both-ways", Fixture, NULL, setup, test_both_ways, teardown);
  g_test_add ("/mam/offline", Fixture, NULL, setup, test_offline, teardown);
  g_test_add ("/mam/filters", Fixture, NULL, setup, test_filters, teardown);
  g_test_add ("/mam/ids", Fixture, NULL, setup, test_ids, teardown);
  g_test_add ("/mam/rsm", Fixture, NULL, setup, test_rsm, teardown);
  g_test_add ("/mam/prefs", Fixture, NULL, setup, test_prefs, teardown);
  g_test_add ("/mam/expiry", Fixture, "[module:mam]\narchive_expires_after = 2s\n", setup,
              test_expiry, teardown);
  g_test_add ("/mam/bad-form", Fixture, NULL, setup, test_bad_form, teardown);
  g_test_add ("/mam/disco-and-delete", Fixture, NULL, setup, test_disco_and_delete, teardown);
  return g_test_run ();
}
