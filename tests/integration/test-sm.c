/* test-sm: stream management (XEP-0198, module sm) against a real mynad —
 * a client whose TCP link is cut mid-conversation (no </stream:stream>)
 * resumes on a new connection and gets every stanza it had not
 * acknowledged exactly once, its presence kept meanwhile; the resumption
 * window expiring sends what was not acknowledged to offline storage (or
 * back to its sender without storage); a second login with the same
 * resource replaces a hibernated session and loses nothing; max_unacked;
 * bad counters and foreign resumption ids are refused; `mynactl reload sm`
 * keeps connected and hibernated sessions' state; <enable/> twice, acks
 * before <enable/>, <enabled max/>; `mynactl stats` counts hibernated
 * sessions apart.
 *
 * The stanza matching helpers are those of test-im.c: a stanza matches
 * when it carries every given substring, and a match is consumed; absence
 * is checked after a ping round trip. */
#include "mynad-harness.h"

#include <sys/socket.h>

#define MODULES "disco;ping;version;auth;bind;roster;presence;offline;sm"
#define NS_SM   "urn:xmpp:sm:3"

typedef struct {
  Mynad d;
} Fixture;

static guint sync_serial;

/* @extra: more configuration (the [module:sm] block), or NULL; the
 * modules are MODULES unless @extra starts with "modules=", whose value
 * (up to the newline) replaces them. */
static void
setup (Fixture *f, gconstpointer extra)
{
  g_autofree char *conf = g_strconcat (MYNAD_PLAIN_AUTH, "\n",
                                       extra != NULL ? (const char *) extra : "", NULL);

  f->d.modules = MODULES;
  mynad_start (&f->d, conf);
  mynad_add_user (&f->d, "alice", "pw-alice");
  mynad_add_user (&f->d, "bob", "pw-bob");
}

static void
teardown (Fixture *f, gconstpointer unused)
{
  g_assert_cmpint (mynad_stop (&f->d), ==, 0);
}

/* ---- matching whole stanzas (as test-im.c) ---------------------------------- */

static const char *
next_stanza (const char *s)
{
  static const char *const starts[] = { "<iq ", "<iq>", "<presence", "<message" };
  const char *best = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (starts); i++)
    {
      const char *p = strstr (s, starts[i]);
      if (p != NULL && (best == NULL || p < best))
        best = p;
    }
  return best;
}

static gboolean
segment_complete (const char *seg, gsize len, const char *name)
{
  g_autofree char *close = g_strdup_printf ("</%s>", name);
  g_autofree char *trimmed = g_strstrip (g_strndup (seg, len));

  /* Stream-management elements may follow a stanza in the same segment. */
  return g_str_has_suffix (trimmed, "/>") || strstr (trimmed, close) != NULL;
}

static gboolean
find_stanza (Client *c, const char *name, const char *const *needles, gsize *off, gsize *len)
{
  g_autofree char *open = g_strconcat ("<", name, NULL);
  const char *buf = c->in->str;

  for (const char *p = next_stanza (buf); p != NULL;)
    {
      const char *q = next_stanza (p + 1);
      gsize n = q != NULL ? (gsize) (q - p) : strlen (p);
      char after = p[strlen (open)];
      gboolean ok = g_str_has_prefix (p, open) && (after == ' ' || after == '>' || after == '/')
                    && segment_complete (p, n, name);

      if (ok)
        {
          g_autofree char *seg = g_strndup (p, n);
          for (guint i = 0; needles[i] != NULL && ok; i++)
            ok = strstr (seg, needles[i]) != NULL;
        }
      if (ok)
        {
          *off = (gsize) (p - buf);
          *len = n;
          return TRUE;
        }
      p = q;
    }
  return FALSE;
}

static GPtrArray *
collect_needles (const char *first, va_list ap)
{
  GPtrArray *needles = g_ptr_array_new ();

  for (const char *n = first; n != NULL; n = va_arg (ap, const char *))
    g_ptr_array_add (needles, (gpointer) n);
  g_ptr_array_add (needles, NULL);
  return needles;
}

/* Waits (bounded) for a stanza <@name/> holding every needle; consumes it. */
G_GNUC_NULL_TERMINATED static gboolean
expect_stanza (Client *c, const char *name, const char *first, ...)
{
  va_list ap;
  va_start (ap, first);
  g_autoptr(GPtrArray) needles = collect_needles (first, ap);
  va_end (ap);
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;
  gsize off, len;

  while (!find_stanza (c, name, (const char *const *) needles->pdata, &off, &len))
    {
      int left = (int) ((deadline - g_get_monotonic_time ()) / 1000);
      if (c->eof || left <= 0 || !client_read (c, left))
        {
          g_test_message ("expected <%s/> with %s…; got: %s", name, first, c->in->str);
          return FALSE;
        }
    }
  g_string_erase (c->in, (gssize) off, (gssize) len);
  return TRUE;
}

G_GNUC_NULL_TERMINATED static gboolean
has_stanza (Client *c, const char *name, const char *first, ...)
{
  va_list ap;
  va_start (ap, first);
  g_autoptr(GPtrArray) needles = collect_needles (first, ap);
  va_end (ap);
  gsize off, len;

  return find_stanza (c, name, (const char *const *) needles->pdata, &off, &len);
}

/* A ping round trip: everything the server sent before is in the buffer. */
static void
sync_client (Client *c)
{
  g_autofree char *id = g_strdup_printf ("sync-%u", ++sync_serial);
  g_autofree char *ping = g_strdup_printf ("<iq type='get' id='%s' to='localhost'>"
                                           "<ping xmlns='urn:xmpp:ping'/></iq>", id);
  g_autofree char *needle = g_strdup_printf ("id='%s'", id);

  client_send (c, ping);
  g_assert_true (expect_stanza (c, "iq", needle, NULL));
}

static void
drain (Client *c)
{
  sync_client (c);
  g_string_truncate (c->in, 0);
}

/* How many times @needle occurs in @c's input. */
static guint
count_in (Client *c, const char *needle)
{
  guint n = 0;

  for (const char *p = c->in->str; (p = strstr (p, needle)) != NULL; p += strlen (needle))
    n++;
  return n;
}

/* ---- logging in --------------------------------------------------------------- */

static Client *
login (Fixture *f, const char *user, const char *resource)
{
  g_autofree char *pw = g_strconcat ("pw-", user, NULL);
  Client *c = client_login (&f->d, user, pw, resource);

  g_assert_nonnull (c);
  return c;
}

/* Asks for the roster and goes available (status USER-here). */
static void
go_available (Client *c, const char *user, const char *resource)
{
  g_autofree char *p = g_strdup_printf ("<presence><status>%s-here</status></presence>", user);
  g_autofree char *from = g_strdup_printf ("from='%s@localhost/%s'", user, resource);

  client_send (c, "<iq type='get' id='rg'><query xmlns='jabber:iq:roster'/></iq>");
  g_assert_true (expect_stanza (c, "iq", "id='rg'", "type='result'", NULL));
  client_send (c, p);
  g_assert_true (expect_stanza (c, "presence", from, NULL));
}

static Client *
login_available (Fixture *f, const char *user, const char *resource)
{
  Client *c = login (f, user, resource);

  go_available (c, user, resource);
  return c;
}

/* Mutual subscription between alice (@a) and bob (@b). */
static void
make_friends (Client *a, Client *b)
{
  client_send (a, "<presence type='subscribe' to='bob@localhost'/>");
  client_send (b, "<presence type='subscribed' to='alice@localhost'/>");
  client_send (b, "<presence type='subscribe' to='alice@localhost'/>");
  client_send (a, "<presence type='subscribed' to='bob@localhost'/>");
  g_assert_true (expect_stanza (a, "iq", "jid='bob@localhost'", "subscription='both'", NULL));
  g_assert_true (expect_stanza (b, "iq", "jid='alice@localhost'", "subscription='both'", NULL));
  drain (a);
  drain (b);
}

/* Connects and authenticates @user without binding: the stream after
 * SASL, its features read (they must offer stream management). */
static Client *
authenticate (Fixture *f, const char *user)
{
  g_autoptr(Client) c = client_connect (&f->d);
  g_autofree char *raw = g_strdup_printf ("%c%s%cpw-%s", 0, user, 0, user);
  g_autofree char *b64 = g_base64_encode ((const guchar *) raw, 5 + 2 * strlen (user));
  g_autofree char *auth = g_strdup_printf ("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                                           "mechanism='PLAIN'>%s</auth>", b64);

  client_send (c, STREAM_OPEN ("localhost"));
  g_assert_true (client_expect_features (c));
  client_send (c, auth);
  g_assert_true (client_expect (c, "<success"));
  g_string_truncate (c->in, 0);
  client_send (c, STREAM_OPEN ("localhost"));
  g_assert_true (client_expect_features (c));
  g_assert_nonnull (strstr (c->in->str, "<sm xmlns='" NS_SM "'/>"));
  g_string_truncate (c->in, 0);
  return g_steal_pointer (&c);
}

/* Enables stream management with resumption; returns the id. */
static char *
enable_sm (Client *c)
{
  client_send (c, "<enable xmlns='" NS_SM "' resume='true'/>");
  g_assert_true (client_expect (c, "<enabled "));
  const char *p = strstr (c->in->str, " id='");
  g_assert_nonnull (p);
  p += 5;
  char *id = g_strndup (p, strcspn (p, "'"));
  /* 128 random bits in hex. */
  g_assert_cmpuint (strlen (id), ==, 32);
  g_assert_nonnull (strstr (c->in->str, "resume='true'"));
  g_assert_nonnull (strstr (c->in->str, "max='"));
  g_string_truncate (c->in, 0);
  return id;
}

/* The client's link dies: no </stream:stream>, the socket just goes. */
static void
cut_link (Client *c)
{
  shutdown (c->fd, SHUT_RDWR);
}

static void
send_msg (Client *from, const char *to, const char *body)
{
  g_autofree char *m = g_strdup_printf ("<message type='chat' to='%s'><body>%s</body></message>",
                                        to, body);
  client_send (from, m);
}

/* Waits until mynad logged @needle, then forgets the log so far (so the
 * next wait is for a new line). */
static void
wait_log (Fixture *f, const char *needle)
{
  g_assert_true (mynad_wait_log (&f->d, needle, WAIT_MS));
  g_string_truncate (f->d.log, 0);
}

/* ---- (a) cut, then resumed ------------------------------------------------------ */

/* The link is cut mid-conversation; messages sent meanwhile and the one
 * received but not acknowledged arrive on the resumed stream exactly
 * once; the contact never saw alice go unavailable, and still sees her
 * presence; the resumed stream goes on counting. */
static void
test_cut_and_resume (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) alice = login_available (f, "alice", "phone");
  g_autoptr(Client) bob = login_available (f, "bob", "desk");

  make_friends (alice, bob);
  g_autofree char *id = enable_sm (alice);

  send_msg (bob, "alice@localhost/phone", "m1");
  send_msg (bob, "alice@localhost/phone", "m2");
  /* The server asks for an ack after the burst. */
  g_assert_true (client_expect (alice, "<body>m2</body>"));
  g_assert_true (client_expect (alice, "<r xmlns='" NS_SM "'/>"));
  g_assert_true (expect_stanza (alice, "message", "<body>m1</body>", NULL));
  g_assert_true (expect_stanza (alice, "message", "<body>m2</body>", NULL));
  client_send (alice, "<a xmlns='" NS_SM "' h='2'/>");
  send_msg (bob, "alice@localhost/phone", "m3");
  g_assert_true (expect_stanza (alice, "message", "<body>m3</body>", NULL));
  /* m3 arrived but is not acknowledged when the link dies. */
  cut_link (alice);
  wait_log (f, "session hibernated");
  send_msg (bob, "alice@localhost/phone", "m4");
  send_msg (bob, "alice@localhost", "m5");
  sync_client (bob);
  g_assert_false (has_stanza (bob, "presence", "type='unavailable'", NULL));
  g_assert_false (has_stanza (bob, "message", "type='error'", NULL));

  /* A new connection resumes with h=2: m3, m4 and m5 come again, once. */
  g_autoptr(Client) again = authenticate (f, "alice");
  g_autofree char *resume = g_strdup_printf ("<resume xmlns='" NS_SM "' h='2' previd='%s'/>", id);
  g_autofree char *resumed = g_strdup_printf ("previd='%s'", id);
  client_send (again, resume);
  g_assert_true (client_expect (again, "<resumed "));
  g_assert_nonnull (strstr (again->in->str, resumed));
  sync_client (again);
  g_assert_cmpuint (count_in (again, "<body>m1</body>"), ==, 0);
  g_assert_cmpuint (count_in (again, "<body>m2</body>"), ==, 0);
  g_assert_cmpuint (count_in (again, "<body>m3</body>"), ==, 1);
  g_assert_cmpuint (count_in (again, "<body>m4</body>"), ==, 1);
  g_assert_cmpuint (count_in (again, "<body>m5</body>"), ==, 1);
  g_assert_null (strstr (again->in->str, "<stream:error"));
  g_string_truncate (again->in, 0);

  /* The same session: its full JID, its presence, its counters. */
  send_msg (again, "bob@localhost", "back");
  g_assert_true (expect_stanza (bob, "message", "from='alice@localhost/phone'",
                                "<body>back</body>", NULL));
  client_send (again, "<r xmlns='" NS_SM "'/>");
  /* Since <enable/> alice sent a ping (sync_client) and a message on the
   * resumed stream: h counts the session's stanzas, across connections. */
  g_assert_true (client_expect (again, "<a xmlns='" NS_SM "' h='2'/>"));
  g_assert_false (has_stanza (bob, "presence", "type='unavailable'", NULL));
  g_autoptr(Client) bob2 = login (f, "bob", "laptop");
  client_send (bob2, "<presence/>");
  g_assert_true (expect_stanza (bob2, "presence", "from='alice@localhost/phone'",
                                "alice-here", NULL));
}

/* The server had not noticed the old link died: the resumption takes the
 * session from it (the old connection is closed with a conflict). */
static void
test_resume_while_connected (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) alice = login_available (f, "alice", "phone");
  g_autoptr(Client) bob = login_available (f, "bob", "desk");
  g_autofree char *id = enable_sm (alice);

  send_msg (bob, "alice@localhost/phone", "x1");
  g_assert_true (expect_stanza (alice, "message", "<body>x1</body>", NULL));
  g_autoptr(Client) again = authenticate (f, "alice");
  g_autofree char *resume = g_strdup_printf ("<resume xmlns='" NS_SM "' h='0' previd='%s'/>", id);
  client_send (again, resume);
  g_assert_true (client_expect (again, "<resumed "));
  sync_client (again);
  g_assert_cmpuint (count_in (again, "<body>x1</body>"), ==, 1);
  g_assert_true (client_expect (alice, "<conflict"));
  g_assert_true (client_expect_closed (alice));
  send_msg (bob, "alice@localhost/phone", "x2");
  g_assert_true (expect_stanza (again, "message", "<body>x2</body>", NULL));
}

#define FAST_KEEPALIVE "[module:ping]\nkeepalive_interval = 1s\nkeepalive_timeout = 1s\n"

/* A link that died silently (the client reads nothing, answers nothing)
 * is found by the keepalive: the session is hibernated, not closed, and
 * the client resumes it. */
static void
test_keepalive_hibernates (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) alice = login_available (f, "alice", "phone");
  g_autofree char *id = enable_sm (alice);

  /* alice never answers the server's ping. */
  g_assert_true (mynad_wait_log (&f->d, "of alice@localhost/phone lost (no answer to a keepalive "
                                 "ping): session hibernated", WAIT_MS));
  g_assert_true (client_expect (alice, "urn:xmpp:ping"));
  g_autoptr(Client) bob = login_available (f, "bob", "desk");
  send_msg (bob, "alice@localhost/phone", "k1");
  sync_client (bob);
  g_assert_false (has_stanza (bob, "message", "type='error'", NULL));
  g_autoptr(Client) again = authenticate (f, "alice");
  g_autofree char *resume = g_strdup_printf ("<resume xmlns='" NS_SM "' h='0' previd='%s'/>", id);
  client_send (again, resume);
  g_assert_true (client_expect (again, "<resumed "));
  g_assert_true (expect_stanza (again, "message", "<body>k1</body>", NULL));
}

/* ---- (b) the window expires ------------------------------------------------------ */

#define SHORT_WINDOW "[module:sm]\nresume_timeout = 1s\n"

/* What the hibernated session had not acknowledged, and what came while
 * it was hibernated, waits in offline storage and arrives at the next
 * login; contacts see alice unavailable once the window ended. */
static void
test_window_expires (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) alice = login_available (f, "alice", "phone");
  g_autoptr(Client) bob = login_available (f, "bob", "desk");

  make_friends (alice, bob);
  g_free (enable_sm (alice));
  send_msg (bob, "alice@localhost/phone", "w1");
  g_assert_true (expect_stanza (alice, "message", "<body>w1</body>", NULL));
  cut_link (alice);
  wait_log (f, "session hibernated");
  send_msg (bob, "alice@localhost/phone", "w2");
  send_msg (bob, "alice@localhost", "w3");
  wait_log (f, "resumption window ended");
  g_assert_true (expect_stanza (bob, "presence", "from='alice@localhost/phone'",
                                "type='unavailable'", NULL));
  sync_client (bob);
  g_assert_false (has_stanza (bob, "message", "type='error'", NULL));

  g_autoptr(Client) next = login_available (f, "alice", "other");
  g_assert_true (expect_stanza (next, "message", "<body>w1</body>", "urn:xmpp:delay", NULL));
  g_assert_true (expect_stanza (next, "message", "<body>w2</body>", "urn:xmpp:delay", NULL));
  g_assert_true (expect_stanza (next, "message", "<body>w3</body>", "urn:xmpp:delay", NULL));
  sync_client (next);
  g_assert_cmpuint (count_in (next, "<body>w"), ==, 0);
}

#define NO_OFFLINE "[module:sm]\nresume_timeout = 1s\n"

/* Without offline storage the sender gets each unacknowledged message
 * back as an error: nothing vanishes silently. */
static void
test_window_expires_no_storage (void)
{
  Fixture f = { 0 };
  g_autofree char *conf = g_strconcat (MYNAD_PLAIN_AUTH, "\n", NO_OFFLINE, NULL);

  f.d.modules = "disco;ping;version;auth;bind;roster;presence;sm";
  mynad_start (&f.d, conf);
  mynad_add_user (&f.d, "alice", "pw-alice");
  mynad_add_user (&f.d, "bob", "pw-bob");
  {
    g_autoptr(Client) alice = login_available (&f, "alice", "phone");
    g_autoptr(Client) bob = login_available (&f, "bob", "desk");

    g_free (enable_sm (alice));
    send_msg (bob, "alice@localhost/phone", "n1");
    g_assert_true (expect_stanza (alice, "message", "<body>n1</body>", NULL));
    cut_link (alice);
    wait_log (&f, "session hibernated");
    send_msg (bob, "alice@localhost/phone", "n2");
    wait_log (&f, "resumption window ended");
    g_assert_true (expect_stanza (bob, "message", "type='error'", "from='alice@localhost'",
                                  "service-unavailable", NULL));
    g_assert_true (expect_stanza (bob, "message", "type='error'", "from='alice@localhost'",
                                  "service-unavailable", NULL));
  }
  g_assert_cmpint (mynad_stop (&f.d), ==, 0);
}

/* ---- (c) a second login with the same resource ---------------------------------- */

static void
test_replaced_by_login (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) alice = login_available (f, "alice", "phone");
  g_autoptr(Client) bob = login_available (f, "bob", "desk");

  g_free (enable_sm (alice));
  send_msg (bob, "alice@localhost/phone", "c1");
  g_assert_true (expect_stanza (alice, "message", "<body>c1</body>", NULL));
  cut_link (alice);
  wait_log (f, "session hibernated");
  send_msg (bob, "alice@localhost/phone", "c2");
  sync_client (bob);

  /* The bind module's kick_old closes the hibernated session. */
  g_autoptr(Client) again = login_available (f, "alice", "phone");
  g_assert_true (expect_stanza (again, "message", "<body>c1</body>", NULL));
  g_assert_true (expect_stanza (again, "message", "<body>c2</body>", NULL));
  sync_client (again);
  g_assert_cmpuint (count_in (again, "<body>c"), ==, 0);
  sync_client (bob);
  g_assert_false (has_stanza (bob, "message", "type='error'", NULL));
}

/* ---- (d) max_unacked ------------------------------------------------------------- */

#define SMALL_QUEUE "[module:sm]\nmax_unacked = 3\n"

static void
test_max_unacked (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) alice = login_available (f, "alice", "phone");
  g_autoptr(Client) bob = login_available (f, "bob", "desk");

  g_free (enable_sm (alice));
  for (guint i = 1; i <= 4; i++)
    {
      g_autofree char *body = g_strdup_printf ("q%u", i);
      send_msg (bob, "alice@localhost/phone", body);
    }
  g_assert_true (client_expect (alice, "<policy-violation"));
  g_assert_true (client_expect_closed (alice));
  sync_client (bob);
  g_assert_false (has_stanza (bob, "message", "type='error'", NULL));
  /* All four wait offline, the three written and unacknowledged too. */
  g_autoptr(Client) again = login_available (f, "alice", "phone");
  for (guint i = 1; i <= 4; i++)
    {
      g_autofree char *body = g_strdup_printf ("<body>q%u</body>", i);
      g_assert_true (expect_stanza (again, "message", body, NULL));
    }
}

/* ---- (e) refusals ----------------------------------------------------------------- */

/* <enable/> before bind fails; an h above what was sent is a stream error
 * (XEP-0198 §4 handled-count-too-high). */
static void
test_bad_counters (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) early = authenticate (f, "bob");
  client_send (early, "<enable xmlns='" NS_SM "'/>");
  g_assert_true (client_expect (early, "<failed xmlns='" NS_SM "'><unexpected-request"));

  g_autoptr(Client) alice = login_available (f, "alice", "phone");
  g_autoptr(Client) bob = login_available (f, "bob", "desk");
  g_free (enable_sm (alice));
  send_msg (bob, "alice@localhost/phone", "e1");
  g_assert_true (expect_stanza (alice, "message", "<body>e1</body>", NULL));
  client_send (alice, "<a xmlns='" NS_SM "' h='1'/>");
  sync_client (alice);
  client_send (alice, "<a xmlns='" NS_SM "' h='5'/>");
  g_assert_true (client_expect (alice, "<undefined-condition"));
  g_assert_true (client_expect (alice, "<handled-count-too-high xmlns='" NS_SM "' h='5' "
                                        "send-count='"));
  g_assert_true (client_expect_closed (alice));
}

/* Another account's id, an unknown one and a bad h are refused; the
 * hibernated session stays for its owner. */
static void
test_resume_refused (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) alice = login_available (f, "alice", "phone");
  g_autofree char *id = enable_sm (alice);
  cut_link (alice);
  wait_log (f, "session hibernated");

  g_autoptr(Client) bob = authenticate (f, "bob");
  g_autofree char *steal = g_strdup_printf ("<resume xmlns='" NS_SM "' h='0' previd='%s'/>", id);
  client_send (bob, steal);
  g_assert_true (client_expect (bob, "<failed xmlns='" NS_SM "'><item-not-found"));

  g_autoptr(Client) unknown = authenticate (f, "alice");
  client_send (unknown, "<resume xmlns='" NS_SM "' h='0' previd='0123456789abcdef0123456789abcdef'/>");
  g_assert_true (client_expect (unknown, "<failed xmlns='" NS_SM "'><item-not-found"));

  g_autoptr(Client) high = authenticate (f, "alice");
  g_autofree char *bad = g_strdup_printf ("<resume xmlns='" NS_SM "' h='7' previd='%s'/>", id);
  client_send (high, bad);
  g_assert_true (client_expect (high, "<failed xmlns='" NS_SM "' h='"));

  g_autoptr(Client) owner = authenticate (f, "alice");
  g_autofree char *good = g_strdup_printf ("<resume xmlns='" NS_SM "' h='0' previd='%s'/>", id);
  client_send (owner, good);
  g_assert_true (client_expect (owner, "<resumed "));
}

/* ---- (f) reloads: nothing of stream management lost ----------------------------- */

/* `mynactl CMD [ARG]` must answer 0. */
static void
ctl_ok (Fixture *f, const char *cmd, const char *arg)
{
  g_autofree char *out = NULL;
  int rc = mynactl (&f->d, &out, cmd, arg, NULL);

  if (rc != 0)
    {
      mynad_wait_log (&f->d, "\n(never logged)\n", 500);     /* read what it logged */
      g_error ("mynactl %s %s: exit %d: %s\nmynad's log:\n%s", cmd, arg != NULL ? arg : "",
               rc, out, f->d.log->str);
    }
}

/* A counter of `mynactl stats`. */
static guint64
stat_get (Fixture *f, const char *name)
{
  g_autofree char *out = NULL;
  g_auto(GStrv) lines = NULL;
  gsize nlen = strlen (name);

  g_assert_cmpint (mynactl (&f->d, &out, "stats", NULL), ==, 0);
  lines = g_strsplit (out, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (strncmp (lines[i], name, nlen) == 0 && lines[i][nlen] == ' ')
      return g_ascii_strtoull (lines[i] + nlen + 1, NULL, 10);
  g_error ("no counter %s in mynactl stats:\n%s", name, out);
  return 0;
}

/* Waits (bounded) until the stats say @connections live connections and
 * @hibernated hibernated sessions; a connection being reaped may still
 * count for a moment. */
static gboolean
stats_are (Fixture *f, guint64 connections, guint64 hibernated)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;
  guint64 c = 0, h = 0;

  while (g_get_monotonic_time () < deadline)
    {
      c = stat_get (f, "connections");
      h = stat_get (f, "sessions_hibernated");
      if (c == connections && h == hibernated)
        return TRUE;
      g_usleep (20 * 1000);     /* polling mynactl: there is no event to wait on */
    }
  g_test_message ("stats: connections %" G_GUINT64_FORMAT ", sessions_hibernated %"
                  G_GUINT64_FORMAT "; wanted %" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT,
                  c, h, connections, hibernated);
  return FALSE;
}

/* A reload (and a reload-config) while alice's stream management runs:
 * her counters go on (the <r/> after it is answered with the right h, not
 * a stream error), the queue of what she had not acknowledged is kept (a
 * resumption after the reload re-sends exactly that), and her resumption
 * id still resumes. */
static void
test_reload_connected (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) alice = login_available (f, "alice", "phone");
  g_autoptr(Client) bob = login_available (f, "bob", "desk");
  g_autofree char *id = enable_sm (alice);

  /* Out: r1 (1), r2 (2); alice acknowledges r1 only. */
  send_msg (bob, "alice@localhost/phone", "r1");
  send_msg (bob, "alice@localhost/phone", "r2");
  g_assert_true (expect_stanza (alice, "message", "<body>r1</body>", NULL));
  g_assert_true (expect_stanza (alice, "message", "<body>r2</body>", NULL));
  client_send (alice, "<a xmlns='" NS_SM "' h='1'/>");
  /* In: the ping (1); out: its result (3). */
  drain (alice);

  ctl_ok (f, "reload", "sm");
  ctl_ok (f, "reload-config", NULL);
  client_send (alice, "<r xmlns='" NS_SM "'/>");
  g_assert_true (client_expect (alice, "<a xmlns='" NS_SM "' h='1'/>"));
  g_assert_null (strstr (alice->in->str, "<stream:error"));
  g_string_truncate (alice->in, 0);

  /* Out: r3 (4).  h='2' acknowledges r2, which the new code must know. */
  send_msg (bob, "alice@localhost/phone", "r3");
  g_assert_true (expect_stanza (alice, "message", "<body>r3</body>", NULL));
  client_send (alice, "<a xmlns='" NS_SM "' h='2'/>");
  sync_client (alice);          /* in 2, out 5 */
  g_assert_null (strstr (alice->in->str, "<stream:error"));
  g_string_truncate (alice->in, 0);

  /* The link dies; resuming with h='2' brings the two ping results and r3
   * once, r1 and r2 never; the server had handled alice's two pings. */
  cut_link (alice);
  wait_log (f, "session hibernated");
  g_autoptr(Client) again = authenticate (f, "alice");
  g_autofree char *resume = g_strdup_printf ("<resume xmlns='" NS_SM "' h='2' previd='%s'/>", id);
  client_send (again, resume);
  g_assert_true (client_expect (again, "<resumed "));
  g_assert_nonnull (strstr (again->in->str, "h='2'"));
  sync_client (again);
  g_assert_cmpuint (count_in (again, "<body>r1</body>"), ==, 0);
  g_assert_cmpuint (count_in (again, "<body>r2</body>"), ==, 0);
  g_assert_cmpuint (count_in (again, "<body>r3</body>"), ==, 1);
  /* The two re-sent ping results (sync_client consumed the third's). */
  g_assert_cmpuint (count_in (again, "id='sync-"), ==, 2);
  g_assert_null (strstr (again->in->str, "<stream:error"));
  /* Six sent so far; a seventh (the next ping result) is all there is. */
  client_send (again, "<a xmlns='" NS_SM "' h='6'/>");
  sync_client (again);
  client_send (again, "<a xmlns='" NS_SM "' h='8'/>");
  g_assert_true (client_expect (again, "handled-count-too-high"));
}

/* A reload while alice's session is hibernated: it stays resumable (the
 * new instance takes it over, window and all), and every message, from
 * before the cut, during it and after the reload, arrives exactly once. */
static void
test_reload_hibernated (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) alice = login_available (f, "alice", "phone");
  g_autoptr(Client) bob = login_available (f, "bob", "desk");
  g_autofree char *id = enable_sm (alice);

  send_msg (bob, "alice@localhost/phone", "h1");
  g_assert_true (expect_stanza (alice, "message", "<body>h1</body>", NULL));
  cut_link (alice);
  wait_log (f, "session hibernated");
  send_msg (bob, "alice@localhost/phone", "h2");
  sync_client (bob);
  ctl_ok (f, "reload", "sm");
  ctl_ok (f, "reload-config", NULL);
  send_msg (bob, "alice@localhost/phone", "h3");
  send_msg (bob, "alice@localhost", "h4");
  sync_client (bob);
  g_assert_false (has_stanza (bob, "message", "type='error'", NULL));
  g_assert_false (has_stanza (bob, "presence", "type='unavailable'", NULL));

  g_autoptr(Client) again = authenticate (f, "alice");
  g_autofree char *resume = g_strdup_printf ("<resume xmlns='" NS_SM "' h='0' previd='%s'/>", id);
  client_send (again, resume);
  g_assert_true (client_expect (again, "<resumed "));
  sync_client (again);
  for (guint i = 1; i <= 4; i++)
    {
      g_autofree char *body = g_strdup_printf ("<body>h%u</body>", i);
      g_assert_cmpuint (count_in (again, body), ==, 1);
    }
  g_string_truncate (again->in, 0);
  send_msg (bob, "alice@localhost/phone", "h5");
  g_assert_true (expect_stanza (again, "message", "<body>h5</body>", NULL));
  /* Nothing went to offline storage meanwhile. */
  g_autoptr(Client) other = login_available (f, "alice", "other");
  sync_client (other);
  g_assert_cmpuint (count_in (other, "<body>h"), ==, 0);
}

/* The window of a session hibernated across a reload still ends (the new
 * instance re-armed it): what it kept goes to offline storage, once. */
static void
test_reload_hibernated_expires (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) alice = login_available (f, "alice", "phone");
  g_autoptr(Client) bob = login_available (f, "bob", "desk");

  g_free (enable_sm (alice));
  send_msg (bob, "alice@localhost/phone", "x1");
  g_assert_true (expect_stanza (alice, "message", "<body>x1</body>", NULL));
  cut_link (alice);
  wait_log (f, "session hibernated");
  ctl_ok (f, "reload", "sm");
  send_msg (bob, "alice@localhost/phone", "x2");
  wait_log (f, "resumption window ended");
  sync_client (bob);
  g_assert_false (has_stanza (bob, "message", "type='error'", NULL));
  g_autoptr(Client) next = login_available (f, "alice", "other");
  g_assert_true (expect_stanza (next, "message", "<body>x1</body>", "urn:xmpp:delay", NULL));
  g_assert_true (expect_stanza (next, "message", "<body>x2</body>", "urn:xmpp:delay", NULL));
  sync_client (next);
  g_assert_cmpuint (count_in (next, "<body>x"), ==, 0);
}

/* An unload (not a reload) still ends a hibernated session: what it kept
 * is re-routed (offline storage), nothing is lost. */
static void
test_unload_ends_hibernated (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) alice = login_available (f, "alice", "phone");
  g_autoptr(Client) bob = login_available (f, "bob", "desk");

  g_free (enable_sm (alice));
  send_msg (bob, "alice@localhost/phone", "u1");
  g_assert_true (expect_stanza (alice, "message", "<body>u1</body>", NULL));
  cut_link (alice);
  wait_log (f, "session hibernated");
  ctl_ok (f, "unload", "sm");
  g_assert_true (stats_are (f, 1, 0));
  g_autoptr(Client) next = login_available (f, "alice", "other");
  g_assert_true (expect_stanza (next, "message", "<body>u1</body>", "urn:xmpp:delay", NULL));
}

/* ---- (g) protocol details ---------------------------------------------------------- */

/* A second <enable/> fails with unexpected-request (XEP-0198 §3's
 * example, and Prosody); the stream and the counters running go on. */
static void
test_enable_twice (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) alice = login_available (f, "alice", "phone");

  g_free (enable_sm (alice));
  sync_client (alice);
  client_send (alice, "<enable xmlns='" NS_SM "' resume='true'/>");
  g_assert_true (client_expect (alice, "<failed xmlns='" NS_SM "'><unexpected-request"));
  g_assert_null (strstr (alice->in->str, "<enabled"));
  client_send (alice, "<r xmlns='" NS_SM "'/>");
  g_assert_true (client_expect (alice, "<a xmlns='" NS_SM "' h='1'/>"));
  sync_client (alice);
  g_assert_null (strstr (alice->in->str, "<stream:error"));
}

/* <r/> or <a/> before <enable/> ends the stream with
 * unsupported-stanza-type (as Prosody does), saying why. */
static void
test_ack_before_enable (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) alice = login_available (f, "alice", "phone");
  client_send (alice, "<r xmlns='" NS_SM "'/>");
  g_assert_true (client_expect (alice, "<unsupported-stanza-type"));
  g_assert_true (client_expect (alice, "stream management is not enabled"));
  g_assert_true (client_expect_closed (alice));

  g_autoptr(Client) bob = login_available (f, "bob", "desk");
  client_send (bob, "<a xmlns='" NS_SM "' h='0'/>");
  g_assert_true (client_expect (bob, "<unsupported-stanza-type"));
  g_assert_true (client_expect_closed (bob));
}

/* <enabled max/> is resume_timeout in seconds, or the client's shorter
 * preferred max, and the window kept is the one announced. */
static void
test_enabled_max (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) alice = login_available (f, "alice", "phone");
  client_send (alice, "<enable xmlns='" NS_SM "' resume='true'/>");
  g_assert_true (client_expect (alice, "<enabled "));
  g_assert_nonnull (strstr (alice->in->str, "max='300'"));

  g_autoptr(Client) bob = login_available (f, "bob", "desk");
  client_send (bob, "<enable xmlns='" NS_SM "' resume='true' max='900'/>");
  g_assert_true (client_expect (bob, "<enabled "));
  g_assert_nonnull (strstr (bob->in->str, "max='300'"));

  /* A client asking for 1 s gets 1 s, and its window ends after it (not
   * after resume_timeout's five minutes). */
  g_autoptr(Client) tablet = login_available (f, "alice", "tablet");
  client_send (tablet, "<enable xmlns='" NS_SM "' resume='true' max='1'/>");
  g_assert_true (client_expect (tablet, "<enabled "));
  g_assert_nonnull (strstr (tablet->in->str, "max='1'"));
  cut_link (tablet);
  wait_log (f, "session hibernated");
  wait_log (f, "alice@localhost/tablet: resumption window ended");
}

/* mynactl stats: a hibernated session is no connection. */
static void
test_stats_hibernated (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) alice = login_available (f, "alice", "phone");
  g_autoptr(Client) bob = login_available (f, "bob", "desk");
  g_autofree char *id = enable_sm (alice);

  g_assert_nonnull (bob);     /* the second live connection */
  g_assert_true (stats_are (f, 2, 0));
  cut_link (alice);
  wait_log (f, "session hibernated");
  g_assert_true (stats_are (f, 1, 1));
  g_autoptr(Client) again = authenticate (f, "alice");
  g_assert_true (stats_are (f, 2, 1));
  g_autofree char *resume = g_strdup_printf ("<resume xmlns='" NS_SM "' h='0' previd='%s'/>", id);
  client_send (again, resume);
  g_assert_true (client_expect (again, "<resumed "));
  g_assert_true (stats_are (f, 2, 0));
  /* Hibernated again; an unload of sm then ends it. */
  cut_link (again);
  wait_log (f, "session hibernated");
  g_assert_true (stats_are (f, 1, 1));
  ctl_ok (f, "unload", "sm");
  g_assert_true (stats_are (f, 1, 0));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, conf, func) g_test_add (path, Fixture, conf, setup, func, teardown)
  ADD ("/sm/cut-and-resume", NULL, test_cut_and_resume);
  ADD ("/sm/resume-while-connected", NULL, test_resume_while_connected);
  ADD ("/sm/keepalive-hibernates", FAST_KEEPALIVE, test_keepalive_hibernates);
  ADD ("/sm/window-expires", SHORT_WINDOW, test_window_expires);
  g_test_add_func ("/sm/window-expires-no-storage", test_window_expires_no_storage);
  ADD ("/sm/replaced-by-login", NULL, test_replaced_by_login);
  ADD ("/sm/max-unacked", SMALL_QUEUE, test_max_unacked);
  ADD ("/sm/bad-counters", NULL, test_bad_counters);
  ADD ("/sm/resume-refused", NULL, test_resume_refused);
  ADD ("/sm/reload-connected", NULL, test_reload_connected);
  ADD ("/sm/reload-hibernated", NULL, test_reload_hibernated);
  ADD ("/sm/reload-hibernated-expires", "[module:sm]\nresume_timeout = 3s\n",
       test_reload_hibernated_expires);
  ADD ("/sm/unload-ends-hibernated", NULL, test_unload_ends_hibernated);
  ADD ("/sm/enable-twice", NULL, test_enable_twice);
  ADD ("/sm/ack-before-enable", NULL, test_ack_before_enable);
  ADD ("/sm/enabled-max", NULL, test_enabled_max);
  ADD ("/sm/stats-hibernated", NULL, test_stats_hibernated);
  return g_test_run ();
}
