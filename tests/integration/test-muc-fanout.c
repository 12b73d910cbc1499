/* test-muc-fanout: the muc module's fan-out (myna_server_fanout: one
 * serialisation, each recipient's `to` spliced in) against a real mynad
 * with stream management and CSI loaded —
 *   - a groupchat message reaches each occupant addressed to it, and what
 *     stream management keeps for an occupant and re-sends on resumption
 *     is addressed to that occupant, not to one fanned out to after it;
 *   - a presence update CSI holds for an inactive occupant comes out on
 *     <active/> addressed to it;
 *   - an occupant that never reads (its socket full) does not stall the
 *     room: the others get every message promptly while its queue grows,
 *     and the c2s output limit cuts it alone, after which it leaves the
 *     room;
 *   - an occupant whose session is gone without the room hearing of it
 *     (no presence module) is dropped at the next fan-out.
 * The room is seeded in the storage as a persistent room (as
 * test-muc-rooms does), so no owner form is needed. */
#include "mynad-harness.h"

#include <myna/storage.h>

#define MUC     "conference.localhost"
#define ROOM    "lobby@" MUC
#define NS_MUC  "http://jabber.org/protocol/muc"
#define NS_SM   "urn:xmpp:sm:3"
#define NS_CSI  "urn:xmpp:csi:0"
#define MODULES "disco;ping;auth;bind;roster;presence;sm;csi"
#define MODULES_NOPRESENCE "disco;ping;auth;bind;roster"

#define CONF MYNAD_PLAIN_AUTH "[component:" MUC "]\nmodule = muc\n"
/* The slow-occupant test: a client over 64 KiB must read it back within
 * a second. */
#define CONF_SLOW CONF "[global]\nmax_output = 64K\noutput_drain_timeout = 1s\n"

#define CONF_NOPRESENCE CONF "#no-presence\n"

typedef struct {
  Mynad d;
} Fixture;

static void
setup (Fixture *f, gconstpointer conf)
{
  g_autoptr(GError) error = NULL;

  /* CONF_NOPRESENCE: no presence module, so nothing tells the room of
   * a session that went. */
  f->d.modules = strstr (conf, "#no-presence") != NULL ? MODULES_NOPRESENCE : MODULES;
  mynad_prepare (&f->d, conf);
  {
    g_autofree char *uri = g_strdup_printf ("sqlite:%s/myna.db", f->d.dir);
    g_autoptr(MynaStorage) st = myna_storage_open (uri, &error);

    g_assert_no_error (error);
    myna_kv_set (st, MUC, "", "muc/muc_rooms", "lobby",
                 "(uint32 1, {'persistent': <true>, "
                 "'affiliations': <@a{si} {'alice@localhost': 3}>})", NULL, NULL, NULL);
    g_assert_true (myna_storage_flush (st, &error));
  }
  mynad_spawn (&f->d);
  const char *users[] = { "alice", "bob", "carol", "dave" };
  for (guint i = 0; i < G_N_ELEMENTS (users); i++)
    {
      g_autofree char *pw = g_strdup_printf ("pw-%s", users[i]);
      mynad_add_user (&f->d, users[i], pw);
    }
}

static void
teardown (Fixture *f, gconstpointer unused)
{
  g_assert_cmpint (mynad_stop (&f->d), ==, 0);
}

static Client *
login (Fixture *f, const char *user, const char *resource)
{
  g_autofree char *pw = g_strdup_printf ("pw-%s", user);
  Client *c = client_login (&f->d, user, pw, resource);

  g_assert_nonnull (c);
  return c;
}

/* Joins the lobby as @nick and waits for the subject, the end of the
 * join; the input is cleared. */
static void
join (Client *c, const char *nick)
{
  g_autofree char *s = g_strdup_printf ("<presence to='" ROOM "/%s'><x xmlns='" NS_MUC "'>"
                                        "<history maxstanzas='0'/></x></presence>", nick);

  client_send (c, s);
  g_assert_true (client_expect (c, "code='110'"));
  g_assert_true (client_expect (c, "<subject"));
  g_string_truncate (c->in, 0);
}

/* A ping round trip: everything the server sent @c before it is in. */
static void
sync_client (Client *c)
{
  static guint serial;
  g_autofree char *id = g_strdup_printf ("sync%u", ++serial);
  g_autofree char *iq = g_strdup_printf ("<iq type='get' id='%s'><ping xmlns='urn:xmpp:ping'/></iq>",
                                         id);
  g_autofree char *needle = g_strdup_printf ("id='%s'", id);

  client_send (c, iq);
  g_assert_true (client_expect (c, needle));
}

static void
groupchat (Client *c, const char *body)
{
  g_autofree char *m = g_strdup_printf ("<message to='" ROOM "' type='groupchat'>"
                                        "<body>%s</body></message>", body);
  client_send (c, m);
}

/* How many times @needle occurs in @hay. */
static guint
count_in (const char *hay, const char *needle)
{
  guint n = 0;

  for (const char *p = strstr (hay, needle); p != NULL; p = strstr (p + 1, needle))
    n++;
  return n;
}

/* Every message and presence in @xml is addressed to @jid. */
static void
assert_all_to (const char *xml, const char *jid)
{
  g_autofree char *mine = g_strdup_printf (" to='%s'", jid);

  g_assert_cmpuint (count_in (xml, " to='"), >, 0);
  g_assert_cmpuint (count_in (xml, " to='"), ==, count_in (xml, mine));
}

/* ---- stream management ----------------------------------------------------- */

/* Bob (stream management on) joins first, then carol and alice: each
 * groupchat message is fanned out to bob before the others.  His link
 * dies unacknowledged; on resumption the messages come again, addressed
 * to him. */
static void
test_sm_resend (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) bob = login (f, "bob", "b");
  g_autoptr(Client) carol = login (f, "carol", "c");
  g_autoptr(Client) alice = login (f, "alice", "a");

  client_send (bob, "<enable xmlns='" NS_SM "' resume='true'/>");
  g_assert_true (client_expect (bob, "<enabled "));
  const char *p = strstr (bob->in->str, " id='");
  g_assert_nonnull (p);
  g_autofree char *id = g_strndup (p + 5, strcspn (p + 5, "'"));
  g_string_truncate (bob->in, 0);
  join (bob, "bob");
  join (carol, "carol");
  join (alice, "alice");
  groupchat (alice, "g1");
  groupchat (alice, "g2");
  g_assert_true (client_expect (bob, "<body>g2</body>"));
  g_assert_true (client_expect (carol, "<body>g2</body>"));
  g_assert_true (client_expect (alice, "<body>g2</body>"));
  assert_all_to (carol->in->str, "carol@localhost/c");
  shutdown (bob->fd, SHUT_RDWR);
  g_assert_true (mynad_wait_log (&f->d, "session hibernated", WAIT_MS));
  groupchat (alice, "g3");
  g_assert_true (client_expect (alice, "<body>g3</body>"));

  /* A new connection resumes having handled nothing: all comes again. */
  g_autoptr(Client) again = client_connect (&f->d);
  g_autofree char *raw = g_strdup_printf ("%cbob%cpw-bob", 0, 0);
  g_autofree char *b64 = g_base64_encode ((const guchar *) raw, 11);
  g_autofree char *auth = g_strdup_printf ("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                                           "mechanism='PLAIN'>%s</auth>", b64);
  client_send (again, STREAM_OPEN ("localhost"));
  g_assert_true (client_expect_features (again));
  client_send (again, auth);
  g_assert_true (client_expect (again, "<success"));
  g_string_truncate (again->in, 0);
  client_send (again, STREAM_OPEN ("localhost"));
  g_assert_true (client_expect_features (again));
  g_string_truncate (again->in, 0);
  g_autofree char *resume = g_strdup_printf ("<resume xmlns='" NS_SM "' h='0' previd='%s'/>", id);
  client_send (again, resume);
  g_assert_true (client_expect (again, "<resumed "));
  g_assert_true (client_expect (again, "<body>g3</body>"));
  const char *resent = strstr (again->in->str, "<resumed ");
  g_assert_nonnull (strstr (resent, "<body>g1</body>"));
  g_assert_nonnull (strstr (resent, "<body>g2</body>"));
  /* The join presences, the subject and g1..g3: all addressed to bob. */
  assert_all_to (strchr (resent, '>') + 1, "bob@localhost/b");
}

/* ---- client state indication ------------------------------------------------- */

/* Carol is inactive: bob's presence update in the room waits for her
 * (alice, after her in the fan-out, has it at once) and comes on
 * <active/>, addressed to carol. */
static void
test_csi_held (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) bob = login (f, "bob", "b");
  g_autoptr(Client) carol = login (f, "carol", "c");
  g_autoptr(Client) alice = login (f, "alice", "a");

  join (bob, "bob");
  join (carol, "carol");
  join (alice, "alice");
  client_send (carol, "<inactive xmlns='" NS_CSI "'/>");
  sync_client (carol);
  g_string_truncate (carol->in, 0);
  client_send (bob, "<presence to='" ROOM "/bob'><show>away</show></presence>");
  g_assert_true (client_expect (alice, "<show>away</show>"));
  assert_all_to (alice->in->str, "alice@localhost/a");
  /* Carol comes before alice in the fan-out: had it been written to her,
   * it would be in her socket now.  (A ping would release it: an iq is
   * important.) */
  char buf[4096];
  ssize_t n;
  while ((n = recv (carol->fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
    g_string_append_len (carol->in, buf, n);
  g_assert_null (strstr (carol->in->str, "<show>away</show>"));
  g_string_truncate (carol->in, 0);
  client_send (carol, "<active xmlns='" NS_CSI "'/>");
  g_assert_true (client_expect (carol, "<show>away</show>"));
  assert_all_to (carol->in->str, "carol@localhost/c");
}

/* ---- a slow occupant ---------------------------------------------------------- */

/* A reader of bulk deliveries: counts two markers in what arrives
 * without keeping it (a few bytes carried over between reads). */
typedef struct {
  Client *c;
  guint   bodies;   /* "<body>slow" seen */
  guint   left;     /* "role='none'" seen: an occupant left */
  char    carry[16];
  gsize   carried;
} Reader;

#define MARK_BODY "<body>slow"
#define MARK_LEFT "role='none'"

/* Reads until @r saw @bodies bodies in all, or @ms passed. */
static void
reader_pump (Reader *r, guint bodies, int ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) ms * 1000;
  char buf[65536 + 16];

  while (r->bodies < bodies && g_get_monotonic_time () < deadline)
    {
      struct pollfd p = { .fd = r->c->fd, .events = POLLIN };
      if (poll (&p, 1, 100) <= 0)
        continue;
      memcpy (buf, r->carry, r->carried);
      ssize_t n = recv (r->c->fd, buf + r->carried, sizeof buf - r->carried - 1, 0);
      if (n <= 0)
        break;
      gsize len = r->carried + (gsize) n;
      buf[len] = '\0';
      for (const char *q = strstr (buf, MARK_BODY); q != NULL; q = strstr (q + 1, MARK_BODY))
        r->bodies++;
      for (const char *q = strstr (buf, MARK_LEFT); q != NULL; q = strstr (q + 1, MARK_LEFT))
        r->left++;
      /* Carry what could start a marker cut by this read (none whole). */
      r->carried = MIN (len, strlen (MARK_BODY) - 1);
      memcpy (r->carry, buf + len - r->carried, r->carried);
      for (gsize i = 0; i < r->carried; i++)
        if (r->carry[i] == '<' || r->carry[i] == 'r')
          {
            memmove (r->carry, r->carry + i, r->carried - i);
            r->carried -= i;
            break;
          }
        else if (i + 1 == r->carried)
          r->carried = 0;
    }
}

#define SLOW_BATCHES 40
#define SLOW_BATCH   10
#define SLOW_BODY    (32 * 1024)

/* Dave joins and never reads again (a small receive buffer, nothing
 * taken from it).  Alice sends 400 messages of 32 KiB in batches; bob,
 * carol and alice get each batch promptly (bounded below, whatever
 * dave's queue holds), dave is cut by the output limit (max_output for
 * output_drain_timeout), and the room sees him leave. */
static void
test_slow_occupant (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) alice = login (f, "alice", "a");
  g_autoptr(Client) bob = login (f, "bob", "b");
  g_autoptr(Client) carol = login (f, "carol", "c");
  g_autoptr(Client) dave = login (f, "dave", "d");
  Reader readers[] = { { .c = alice }, { .c = bob }, { .c = carol } };
  int small = 4096;
  g_autofree char *pad = g_strnfill (SLOW_BODY, 'x');
  gint64 worst = 0;

  join (alice, "alice");
  join (bob, "bob");
  join (carol, "carol");
  join (dave, "dave");
  setsockopt (dave->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);

  for (guint b = 0; b < SLOW_BATCHES; b++)
    {
      gint64 t0 = g_get_monotonic_time ();
      for (guint k = 0; k < SLOW_BATCH; k++)
        {
          g_autofree char *body = g_strdup_printf ("slow%u.%u %s", b, k, pad);
          groupchat (alice, body);
        }
      for (guint i = 0; i < G_N_ELEMENTS (readers); i++)
        {
          reader_pump (&readers[i], (b + 1) * SLOW_BATCH, WAIT_MS);
          g_assert_cmpuint (readers[i].bodies, ==, (b + 1) * SLOW_BATCH);
        }
      worst = MAX (worst, g_get_monotonic_time () - t0);
    }
  g_test_message ("slowest batch of %u x %u KiB to three readers: %.1f ms", SLOW_BATCH,
                  SLOW_BODY / 1024, (double) worst / 1000);
  /* 3 x 320 KiB a batch over loopback, no reader waiting on dave: well
   * under a second (ASan included). */
  g_assert_cmpint (worst, <, 5 * G_USEC_PER_SEC);

  /* Dave is cut (not reading), and the room sees him go (the only
   * occupant leaving: role='none'). */
  g_assert_true (mynad_wait_log (&f->d, "client is not reading, disconnecting", WAIT_MS));
  groupchat (alice, "slow-after");
  for (guint i = 0; i < G_N_ELEMENTS (readers); i++)
    {
      reader_pump (&readers[i], SLOW_BATCHES * SLOW_BATCH + 1, WAIT_MS);
      g_assert_cmpuint (readers[i].bodies, ==, SLOW_BATCHES * SLOW_BATCH + 1);
      g_assert_cmpuint (readers[i].left, ==, 1);
    }
  /* The room goes on, addressed right. */
  groupchat (alice, "after");
  g_assert_true (client_expect (bob, "<body>after</body>"));
  assert_all_to (bob->in->str, "bob@localhost/b");
}

/* ---- an occupant without a session ------------------------------------------ */

/* Bob's connection goes and nothing tells the room (no presence module
 * here): the next fan-out finds no session for him, and the room drops
 * him as if he had left (XEP-0045: an unavailable occupant is removed);
 * alice sees him go. */
static void
test_gone_occupant (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) alice = login (f, "alice", "a");
  Client *bob = login (f, "bob", "b");

  join (alice, "alice");
  join (bob, "bob");
  g_assert_true (client_expect (alice, "from='" ROOM "/bob'"));
  g_string_truncate (alice->in, 0);
  client_free (bob);
  /* Until the core has seen bob's connection end, a message is still
   * written to his session: knock until the room notices (each knock
   * waits for its own echo, then a little for what follows). */
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;
  guint n = 0;
  while (strstr (alice->in->str, "role='none'") == NULL && g_get_monotonic_time () < deadline)
    {
      g_autofree char *body = g_strdup_printf ("knock%u", n++);
      groupchat (alice, body);
      g_autofree char *mark = g_strdup_printf ("<body>%s</body>", body);
      g_assert_true (client_expect (alice, mark));
      client_read (alice, 200);
    }
  g_assert_nonnull (strstr (alice->in->str, "role='none'"));
  g_assert_nonnull (strstr (alice->in->str, "from='" ROOM "/bob'"));
  g_assert_true (mynad_wait_log (&f->d, "has no session any more", WAIT_MS));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/muc-fanout/sm-resend", Fixture, CONF, setup, test_sm_resend, teardown);
  g_test_add ("/muc-fanout/csi-held", Fixture, CONF, setup, test_csi_held, teardown);
  g_test_add ("/muc-fanout/slow-occupant", Fixture, CONF_SLOW, setup, test_slow_occupant,
              teardown);
  g_test_add ("/muc-fanout/gone-occupant", Fixture, CONF_NOPRESENCE, setup, test_gone_occupant,
              teardown);
  return g_test_run ();
}
