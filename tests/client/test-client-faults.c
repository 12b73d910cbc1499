/* test-client-faults: libmyna-client's public API against a real mynad,
 * each client through its own fault-injection proxy (proxy.h).  The link
 * is cut mid-conversation, blackholed, delayed; mynad restarts; the
 * account is deleted while the client is offline; the reconnect waits are
 * checked on a test clock.  In every case each message sent by either
 * side arrives exactly once: counted at the "message-received" signal and
 * in the receiver's store, and every sent message ends acknowledged.
 *
 * Waits iterate the main context until a condition holds or a deadline
 * passes; nothing sleeps. */
#include "proxy.h"
#include "../integration/mynad-harness.h"

#include <myna/client/myna-client.h>
#include <signal.h>

/* How long a client may take to get online, or messages to arrive. */
#define ONLINE_MS 20000
#define ARRIVE_MS 30000

#define PASSWORD "a-password-long-enough"

/* One account: its client, store and proxy, and what its signals told. */
typedef struct {
  const char      *name;        /* "alice" */
  char            *jid;         /* bare; NULL until known */
  MynaClientStore *store;
  MynaClient      *client;
  MynaClientClock *clock;       /* a test clock, or NULL for real time */
  Proxy           *proxy;
  MynaClientState  state;
  GHashTable      *got;         /* body → times "message-received" gave it */
  GHashTable      *got_ids;     /* body → the id it came with */
  GHashTable      *sent;        /* body → id, of what this side sent */
  GPtrArray       *events;      /* "state:<s>[:<reason>]", "registered:<jid>",
                                   "cleared:<reason>", "reconnecting:<ms>" */
  GArray          *delays;      /* guint: each "reconnecting" delay */
  guint            authenticated;
  guint            disconnected;
  char            *last_reason; /* of the last DISCONNECTED */
  gint64           disconnected_at;
  char            *registered_jid;
  guint            registered;
  guint            cleared;
} Peer;

/* How a test wants a client set up. */
typedef struct {
  const char     *jid;          /* NULL: name@localhost */
  gboolean        generated;    /* register a generated username (jid = domain) */
  MynaClientTls   tls;
  guint           heartbeat_interval;   /* 0: the default */
  guint           heartbeat_timeout;
  guint           reconnect_base;       /* 0: 200 ms */
  guint           reconnect_max;        /* 0: 2000 ms */
  gboolean        test_clock;
  gboolean        refused;      /* the proxy refuses from the start */
} PeerOpts;

typedef struct {
  Mynad  d;
  guint  drain_id;
  Peer   alice;
  Peer   bob;
} Fixture;

/* ---- waiting -------------------------------------------------------------- */

/* The deadline passed. */
static gboolean
deadline_cb (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

/* A bounded wait on the main context: an expiry flag set by a timeout. */
typedef struct {
  gboolean expired;
  guint    id;
} Deadline;

/* Arms @dl to expire in @ms. */
static void
deadline_start (Deadline *dl, guint ms)
{
  dl->expired = FALSE;
  dl->id = g_timeout_add (ms, deadline_cb, &dl->expired);
}

/* Runs one main-context iteration; FALSE once the deadline passed. */
static gboolean
deadline_iterate (Deadline *dl)
{
  if (dl->expired)
    return FALSE;
  g_main_context_iteration (NULL, TRUE);
  return TRUE;
}

/* Disarms @dl (if it has not expired). */
static void
deadline_stop (Deadline *dl)
{
  if (!dl->expired)
    g_source_remove (dl->id);
}

/* Iterates the main context until @cond holds; fails the test (naming the
 * condition) when @ms pass first. */
#define WAIT_UNTIL(cond, ms) G_STMT_START {                                  \
    Deadline dl_;                                                            \
    deadline_start (&dl_, (ms));                                             \
    while (!(cond) && deadline_iterate (&dl_))                               \
      ;                                                                      \
    deadline_stop (&dl_);                                                    \
    if (!(cond))                                                             \
      g_test_message ("timed out after %u ms waiting for %s", (guint) (ms), #cond); \
    g_assert_true (cond);                                                    \
  } G_STMT_END

/* Runs what is ready on the main context now, without blocking. */
static void
iterate_ready (void)
{
  for (int i = 0; i < 100 && g_main_context_iteration (NULL, FALSE); i++)
    ;
}

/* ---- mynad ------------------------------------------------------------------ */

/* Keeps mynad's stderr pipe drained while the test runs the main loop (a
 * full pipe would stall mynad). */
static gboolean
drain_cb (gpointer data)
{
  Mynad *d = data;

  if (d->err != NULL)
    mynad_log_drain (d);
  return G_SOURCE_CONTINUE;
}

/* Lines of mynad's log holding both @a and @b. */
static guint
log_count (Mynad *d, const char *a, const char *b)
{
  g_auto(GStrv) lines = g_strsplit (d->log->str, "\n", -1);
  guint n = 0;

  for (guint i = 0; lines[i] != NULL; i++)
    if (strstr (lines[i], a) != NULL && strstr (lines[i], b) != NULL)
      n++;
  return n;
}

/* mynad with registration open, stream management (resumable for 5
 * minutes) and offline storage; its log drained from the main loop. */
static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  f->d.modules = "auth;bind;roster;presence;register;sm;ping;disco;offline";
  mynad_start (&f->d,
               "[module:register]\n"
               "allow_registration = true\n"
               "allow_insecure = true\n"
               "min_seconds_between = 0s\n"
               "[module:sm]\n"
               "resume_timeout = 5m\n");
  f->drain_id = g_timeout_add (20, drain_cb, &f->d);
}

/* ---- clients ---------------------------------------------------------------- */

/* "state-changed": the state, its counts, the last reason. */
static void
on_state (MynaClient *client, MynaClientState state, const char *reason, Peer *p)
{
  p->state = state;
  g_ptr_array_add (p->events, g_strdup_printf ("state:%s%s%s",
                                               myna_client_state_to_string (state),
                                               reason != NULL ? ":" : "",
                                               reason != NULL ? reason : ""));
  g_test_message ("%s: %s%s%s", p->name, myna_client_state_to_string (state),
                  reason != NULL ? " - " : "", reason != NULL ? reason : "");
  if (state == MYNA_CLIENT_STATE_AUTHENTICATED)
    {
      p->authenticated++;
      if (p->jid == NULL)
        myna_client_store_get_account (p->store, &p->jid, NULL);
    }
  else if (state == MYNA_CLIENT_STATE_DISCONNECTED)
    {
      p->disconnected++;
      p->disconnected_at = g_get_monotonic_time ();
      g_free (p->last_reason);
      p->last_reason = g_strdup (reason);
    }
}

/* "reconnecting": each wait, in order. */
static void
on_reconnecting (MynaClient *client, guint delay_ms, Peer *p)
{
  g_array_append_val (p->delays, delay_ms);
  g_ptr_array_add (p->events, g_strdup_printf ("reconnecting:%u", delay_ms));
}

/* "message-received": counted per body (a test's bodies are unique). */
static void
on_message (MynaClient *client, MynaClientMessage *m, Peer *p)
{
  g_assert_nonnull (m);
  g_assert_nonnull (m->body);
  g_assert_cmpint (m->direction, ==, MYNA_CLIENT_DIRECTION_IN);
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (p->got, m->body));
  g_hash_table_replace (p->got, g_strdup (m->body), GUINT_TO_POINTER (n + 1));
  g_hash_table_replace (p->got_ids, g_strdup (m->body), g_strdup (m->id));
  if (n > 0)
    g_test_message ("%s: got %s (id %s) %u times", p->name, m->body, m->id, n + 1);
}

/* "registered": the new account. */
static void
on_registered (MynaClient *client, const char *jid, Peer *p)
{
  p->registered++;
  g_free (p->registered_jid);
  p->registered_jid = g_strdup (jid);
  g_ptr_array_add (p->events, g_strdup_printf ("registered:%s", jid));
}

/* "credentials-cleared". */
static void
on_cleared (MynaClient *client, const char *reason, Peer *p)
{
  p->cleared++;
  g_ptr_array_add (p->events, g_strdup_printf ("cleared:%s", reason != NULL ? reason : ""));
}

/* Makes @p's store (in mynad's temporary directory), proxy and client, and
 * starts it. */
static void
peer_start (Fixture *f, Peer *p, const char *name, const PeerOpts *opts)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_strdup_printf ("%s/client-%s/store.db", f->d.dir, name);
  g_autofree char *jid = NULL;

  p->name = name;
  p->got = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  p->got_ids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  p->sent = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  p->events = g_ptr_array_new_with_free_func (g_free);
  p->delays = g_array_new (FALSE, FALSE, sizeof (guint));
  p->store = myna_client_store_new (path, &error);
  g_assert_no_error (error);
  p->proxy = proxy_new (f->d.port);
  if (opts->refused)
    proxy_set_mode (p->proxy, PROXY_REFUSE, 0);
  if (opts->test_clock)
    p->clock = myna_client_test_clock_new ();
  p->client = myna_client_new_with_clock (p->store, p->clock);

  if (opts->generated)
    jid = g_strdup ("localhost");
  else
    jid = g_strdup (opts->jid != NULL ? opts->jid : NULL);
  if (jid == NULL)
    jid = g_strdup_printf ("%s@localhost", name);
  g_object_set (p->client,
                "jid", jid,
                "password", opts->generated ? NULL : PASSWORD,
                "server", "127.0.0.1",
                "port", (guint) p->proxy->port,
                "tls", opts->tls,
                "reconnect-base", opts->reconnect_base != 0 ? opts->reconnect_base : 200,
                "reconnect-max", opts->reconnect_max != 0 ? opts->reconnect_max : 2000,
                "iq-timeout", 10000,
                NULL);
  if (opts->heartbeat_interval != 0)
    g_object_set (p->client, "heartbeat-interval", opts->heartbeat_interval,
                  "heartbeat-timeout", opts->heartbeat_timeout, NULL);
  if (opts->tls != MYNA_CLIENT_TLS_NONE)
    {
      g_autofree char *crt = g_build_filename (f->d.dir, "certs", "localhost.crt", NULL);
      g_assert_true (g_file_test (crt, G_FILE_TEST_EXISTS));
      g_object_set (p->client, "accept-certificate", crt, NULL);
    }
  g_signal_connect (p->client, "state-changed", G_CALLBACK (on_state), p);
  g_signal_connect (p->client, "reconnecting", G_CALLBACK (on_reconnecting), p);
  g_signal_connect (p->client, "message-received", G_CALLBACK (on_message), p);
  g_signal_connect (p->client, "registered", G_CALLBACK (on_registered), p);
  g_signal_connect (p->client, "credentials-cleared", G_CALLBACK (on_cleared), p);
  myna_client_start (p->client);
}

/* Logs @p out (bounded), and frees all of it. */
static void
peer_stop (Peer *p)
{
  if (p->client == NULL)
    return;
  myna_client_logout (p->client);
  Deadline dl;
  deadline_start (&dl, 5000);
  while (p->state != MYNA_CLIENT_STATE_STOPPED && deadline_iterate (&dl))
    /* A test clock does not move by itself: the logout's wait for acks
     * would never end. */
    if (p->clock != NULL && p->state != MYNA_CLIENT_STATE_STOPPED)
      myna_client_test_clock_advance (MYNA_CLIENT_TEST_CLOCK (p->clock), 100);
  deadline_stop (&dl);
  g_assert_cmpint (p->state, ==, MYNA_CLIENT_STATE_STOPPED);
  g_clear_object (&p->client);
  iterate_ready ();
  /* The clock's pending timeouts free a politely closed conn; the I/O it
   * cancels then, and what the proxy's closing completes, call back once
   * more before the conn's last reference goes. */
  g_clear_object (&p->clock);
  iterate_ready ();
  g_clear_object (&p->store);
  g_clear_pointer (&p->proxy, proxy_free);
  iterate_ready ();
  g_clear_pointer (&p->got, g_hash_table_unref);
  g_clear_pointer (&p->got_ids, g_hash_table_unref);
  g_clear_pointer (&p->sent, g_hash_table_unref);
  g_clear_pointer (&p->events, g_ptr_array_unref);
  g_clear_pointer (&p->delays, g_array_unref);
  g_clear_pointer (&p->jid, g_free);
  g_clear_pointer (&p->last_reason, g_free);
  g_clear_pointer (&p->registered_jid, g_free);
}

/* Logs both clients out and stops mynad. */
static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  peer_stop (&f->alice);
  peer_stop (&f->bob);
  g_source_remove (f->drain_id);
  mynad_stop (&f->d);
}

/* @p is logged in. */
static gboolean
online (Peer *p)
{
  return p->state == MYNA_CLIENT_STATE_AUTHENTICATED;
}

/* Starts alice and bob (plain TCP unless @tls says otherwise) and waits
 * until both are online. */
static void
start_pair (Fixture *f, const PeerOpts *alice_opts)
{
  static const PeerOpts plain = { .tls = MYNA_CLIENT_TLS_NONE };

  peer_start (f, &f->alice, "alice", alice_opts != NULL ? alice_opts : &plain);
  peer_start (f, &f->bob, "bob", &plain);
  WAIT_UNTIL (online (&f->alice) && online (&f->bob), ONLINE_MS);
  g_assert_cmpstr (f->alice.jid, ==, "alice@localhost");
  g_assert_cmpstr (f->bob.jid, ==, "bob@localhost");
}

/* ---- messages ------------------------------------------------------------------ */

/* Sends @body from @from to @to's bare JID; keeps the id. */
static void
send_one (Peer *from, Peer *to, const char *body)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *to_jid = g_strdup_printf ("%s@localhost", to->name);
  char *id = myna_client_send_message (from->client, to_jid, body, &error);

  g_assert_no_error (error);
  g_assert_nonnull (id);
  g_assert_false (g_hash_table_contains (from->sent, body));
  g_hash_table_insert (from->sent, g_strdup (body), id);
}

/* Sends @n messages "<tag>-<from>-<i>" from @from to @to. */
static void
send_many (Peer *from, Peer *to, const char *tag, guint n)
{
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *body = g_strdup_printf ("%s-%s-%u", tag, from->name, i);
      send_one (from, to, body);
    }
}

/* Everything @from sent has reached @to at least once. */
static gboolean
all_arrived (Peer *from, Peer *to)
{
  GHashTableIter it;
  gpointer body;

  g_hash_table_iter_init (&it, from->sent);
  while (g_hash_table_iter_next (&it, &body, NULL))
    if (!g_hash_table_contains (to->got, body))
      return FALSE;
  return TRUE;
}

/* Received messages of @to: how many arrived of what @from sent. */
static guint
arrived_count (Peer *from, Peer *to)
{
  GHashTableIter it;
  gpointer body;
  guint n = 0;

  g_hash_table_iter_init (&it, from->sent);
  while (g_hash_table_iter_next (&it, &body, NULL))
    n += g_hash_table_contains (to->got, body);
  return n;
}

/* Every message @from sent is ACKED or DELIVERED in its store. */
static gboolean
all_acked (Peer *from)
{
  GHashTableIter it;
  gpointer id;

  g_hash_table_iter_init (&it, from->sent);
  while (g_hash_table_iter_next (&it, NULL, &id))
    {
      g_autoptr(MynaClientMessage) m =
          myna_client_store_get_message (from->store, MYNA_CLIENT_DIRECTION_OUT, id);
      if (m == NULL || (m->state != MYNA_CLIENT_MESSAGE_ACKED
                        && m->state != MYNA_CLIENT_MESSAGE_DELIVERED))
        return FALSE;
    }
  return TRUE;
}

/* Waits until what each side sent has arrived and is acknowledged, sends
 * one more message each way and waits for it (a duplicate of an earlier
 * one, which the server would deliver before it, then shows), and checks
 * that every message arrived exactly once, with its id, at the signal and
 * in the receiver's store. */
static void
check_exactly_once (Peer *a, Peer *b)
{
  WAIT_UNTIL (all_arrived (a, b) && all_arrived (b, a), ARRIVE_MS);
  WAIT_UNTIL (all_acked (a) && all_acked (b), ARRIVE_MS);
  g_autofree char *last_a = g_strdup_printf ("last-%s", a->name);
  g_autofree char *last_b = g_strdup_printf ("last-%s", b->name);
  send_one (a, b, last_a);
  send_one (b, a, last_b);
  WAIT_UNTIL (all_arrived (a, b) && all_arrived (b, a), ARRIVE_MS);
  WAIT_UNTIL (all_acked (a) && all_acked (b), ARRIVE_MS);

  Peer *pairs[2][2] = { { a, b }, { b, a } };
  for (int k = 0; k < 2; k++)
    {
      Peer *from = pairs[k][0], *to = pairs[k][1];
      GHashTableIter it;
      gpointer body, id;

      /* The signal: once each, with the sender's id. */
      g_assert_cmpuint (g_hash_table_size (to->got), ==, g_hash_table_size (from->sent));
      g_hash_table_iter_init (&it, from->sent);
      while (g_hash_table_iter_next (&it, &body, &id))
        {
          g_assert_cmpuint (GPOINTER_TO_UINT (g_hash_table_lookup (to->got, body)), ==, 1);
          g_assert_cmpstr (g_hash_table_lookup (to->got_ids, body), ==, id);
        }
      /* The receiver's store: each once, from the sender's bare JID. */
      g_autofree char *from_jid = g_strdup_printf ("%s@localhost", from->name);
      g_autoptr(GPtrArray) msgs = myna_client_store_get_messages (to->store, from_jid, 0);
      g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
      guint in = 0;
      for (guint i = 0; i < msgs->len; i++)
        {
          MynaClientMessage *m = g_ptr_array_index (msgs, i);
          if (m->direction != MYNA_CLIENT_DIRECTION_IN)
            continue;
          in++;
          g_assert_false (g_hash_table_contains (seen, m->body));
          g_hash_table_add (seen, m->body);
          g_assert_true (g_hash_table_contains (from->sent, m->body));
          g_assert_cmpstr (m->peer, ==, from_jid);
        }
      g_assert_cmpuint (in, ==, g_hash_table_size (from->sent));
      /* The sender's store: nothing left to send. */
      g_autoptr(GPtrArray) pending = myna_client_store_get_pending (from->store);
      g_assert_cmpuint (pending->len, ==, 0);
    }
}

/* ---- (a) the link cut mid-conversation -------------------------------------------- */

/* Both sides send; once some of it went through, alice's link is cut with
 * the rest in flight both ways; more is written while she is away.  She
 * resumes the stream; nothing is lost or doubled. */
static void
run_cut (Fixture *f, const PeerOpts *alice_opts)
{
  start_pair (f, alice_opts);
  send_many (&f->alice, &f->bob, "cut", 30);
  send_many (&f->bob, &f->alice, "cut", 30);
  WAIT_UNTIL (arrived_count (&f->alice, &f->bob) >= 5 || arrived_count (&f->bob, &f->alice) >= 5,
              ARRIVE_MS);
  guint authenticated = f->alice.authenticated;
  proxy_set_mode (f->alice.proxy, PROXY_CUT, 0);
  g_test_message ("cut with %u/30 and %u/30 arrived", arrived_count (&f->alice, &f->bob),
                  arrived_count (&f->bob, &f->alice));
  send_many (&f->alice, &f->bob, "away", 10);
  send_many (&f->bob, &f->alice, "away", 10);
  WAIT_UNTIL (f->alice.disconnected == 1, ONLINE_MS);
  g_assert_cmpstr (f->alice.last_reason, ==, "connection closed");
  WAIT_UNTIL (f->alice.authenticated == authenticated + 1, ONLINE_MS);
  check_exactly_once (&f->alice, &f->bob);
  /* The stream was resumed, not logged into anew. */
  mynad_log_drain (&f->d);
  g_assert_cmpuint (log_count (&f->d, "session alice@localhost/", " resumed"), ==, 1);
  g_assert_cmpuint (f->bob.disconnected, ==, 0);
}

/* (a) over plain TCP. */
static void
test_cut (Fixture *f, gconstpointer data)
{
  run_cut (f, NULL);
}

/* The same through STARTTLS, with mynad's development certificate
 * accepted explicitly. */
static void
test_cut_starttls (Fixture *f, gconstpointer data)
{
  PeerOpts tls = { .tls = MYNA_CLIENT_TLS_STARTTLS };

  run_cut (f, &tls);
}

/* ---- (b) the link blackholed -------------------------------------------------------- */

/* No FIN, no RST: the heartbeat (1 s, answered within 1 s) notices the
 * silent link within interval + timeout; what was written into the hole
 * is sent again after the resumption, once. */
static void
test_blackhole (Fixture *f, gconstpointer data)
{
  PeerOpts hb = { .tls = MYNA_CLIENT_TLS_NONE, .heartbeat_interval = 1, .heartbeat_timeout = 1 };
#if defined(__SANITIZE_ADDRESS__)
  const gint64 slack_ms = 1500;
#else
  const gint64 slack_ms = 700;
#endif

  start_pair (f, &hb);
  send_many (&f->alice, &f->bob, "before", 5);
  send_many (&f->bob, &f->alice, "before", 5);
  WAIT_UNTIL (all_arrived (&f->alice, &f->bob) && all_arrived (&f->bob, &f->alice), ARRIVE_MS);

  guint authenticated = f->alice.authenticated;
  proxy_set_mode (f->alice.proxy, PROXY_BLACKHOLE, 0);
  gint64 t0 = g_get_monotonic_time ();
  send_many (&f->alice, &f->bob, "hole", 5);
  send_many (&f->bob, &f->alice, "hole", 5);
  WAIT_UNTIL (f->alice.disconnected == 1, 2000 + 5000);
  gint64 noticed_ms = (f->alice.disconnected_at - t0) / 1000;
  g_test_message ("the blackhole noticed after %" G_GINT64_FORMAT " ms", noticed_ms);
  g_assert_cmpstr (f->alice.last_reason, ==, "heartbeat unanswered");
  g_assert_cmpint (noticed_ms, <=, 1000 + 1000 + slack_ms);
  /* The packets in the hole are lost (the old pair is closed), and the
   * network comes back. */
  proxy_set_mode (f->alice.proxy, PROXY_CUT, 0);
  WAIT_UNTIL (f->alice.authenticated == authenticated + 1, ONLINE_MS);
  send_many (&f->alice, &f->bob, "after", 5);
  send_many (&f->bob, &f->alice, "after", 5);
  check_exactly_once (&f->alice, &f->bob);
  g_assert_cmpuint (f->bob.disconnected, ==, 0);
  g_assert_cmpuint (f->alice.disconnected, ==, 1);
  mynad_log_drain (&f->d);
  g_assert_cmpuint (log_count (&f->d, "session alice@localhost/", " resumed"), ==, 1);
}

/* ---- (c) a slow link -------------------------------------------------------------- */

/* 300 ms each way on both links while 50 messages go each way: slow, not
 * broken — no reconnection, everything once. */
static void
test_delay (Fixture *f, gconstpointer data)
{
  start_pair (f, NULL);
  proxy_set_mode (f->alice.proxy, PROXY_DELAY, 300);
  proxy_set_mode (f->bob.proxy, PROXY_DELAY, 300);
  /* The delay holds: a message crosses two delayed links. */
  gint64 t0 = g_get_monotonic_time ();
  send_one (&f->alice, &f->bob, "slow-first");
  WAIT_UNTIL (all_arrived (&f->alice, &f->bob), ARRIVE_MS);
  g_assert_cmpint ((g_get_monotonic_time () - t0) / 1000, >=, 600);
  for (guint i = 0; i < 50; i++)
    {
      g_autofree char *a = g_strdup_printf ("slow-alice-%u", i);
      g_autofree char *b = g_strdup_printf ("slow-bob-%u", i);
      send_one (&f->alice, &f->bob, a);
      send_one (&f->bob, &f->alice, b);
      /* Interleaved with the traffic, not all at once. */
      if (i % 10 == 9)
        WAIT_UNTIL (arrived_count (&f->alice, &f->bob) >= i - 5, ARRIVE_MS);
    }
  check_exactly_once (&f->alice, &f->bob);
  g_assert_cmpuint (f->alice.disconnected, ==, 0);
  g_assert_cmpuint (f->bob.disconnected, ==, 0);
}

/* ---- (d) mynad restarts ------------------------------------------------------------- */

/* Alice is offline with messages queued; bob is online with messages in
 * flight; mynad restarts (every session is gone): both log in anew after
 * the resumption fails, and what was queued or unacknowledged is sent
 * exactly once. */
static void
test_restart (Fixture *f, gconstpointer data)
{
  start_pair (f, NULL);
  send_many (&f->alice, &f->bob, "before", 5);
  send_many (&f->bob, &f->alice, "before", 5);
  WAIT_UNTIL (all_arrived (&f->alice, &f->bob) && all_arrived (&f->bob, &f->alice), ARRIVE_MS);

  /* Alice goes offline and writes. */
  proxy_set_mode (f->alice.proxy, PROXY_REFUSE, 0);
  proxy_cut (f->alice.proxy);
  WAIT_UNTIL (f->alice.disconnected == 1, ONLINE_MS);
  myna_client_set_network_available (f->alice.client, FALSE);
  send_many (&f->alice, &f->bob, "queued", 10);
  for (guint i = 0; i < 10; i++)
    {
      g_autofree char *body = g_strdup_printf ("queued-alice-%u", i);
      g_autoptr(MynaClientMessage) m =
          myna_client_store_get_message (f->alice.store, MYNA_CLIENT_DIRECTION_OUT,
                                         g_hash_table_lookup (f->alice.sent, body));
      g_assert_nonnull (m);
      g_assert_cmpint (m->state, ==, MYNA_CLIENT_MESSAGE_QUEUED);
    }
  /* Bob writes to her (kept by mynad) and, just before the restart, more
   * that is still on its way. */
  send_many (&f->bob, &f->alice, "while-away", 5);
  WAIT_UNTIL (all_acked (&f->bob), ARRIVE_MS);
  send_many (&f->bob, &f->alice, "in-flight", 5);
  guint bob_auth = f->bob.authenticated;

  mynad_restart (&f->d);

  WAIT_UNTIL (f->bob.disconnected >= 1, ONLINE_MS);
  WAIT_UNTIL (f->bob.authenticated > bob_auth, ONLINE_MS);
  proxy_set_mode (f->alice.proxy, PROXY_PASS, 0);
  guint alice_auth = f->alice.authenticated;
  myna_client_set_network_available (f->alice.client, TRUE);
  WAIT_UNTIL (f->alice.authenticated > alice_auth, ONLINE_MS);
  send_many (&f->alice, &f->bob, "after", 5);
  send_many (&f->bob, &f->alice, "after", 5);
  check_exactly_once (&f->alice, &f->bob);
  /* The new mynad knew no session: both tried to resume, were refused,
   * and logged in anew. */
  mynad_log_drain (&f->d);
  g_assert_cmpuint (log_count (&f->d, "resumption of an unknown", "refused"), >=, 2);
  g_assert_cmpuint (log_count (&f->d, "session ", " resumed"), ==, 0);
}

/* ---- (e) the account deleted while offline ------------------------------------------- */

/* A generated account is deleted by the server while the client is away:
 * the next login gets not-authorized, the stored credentials are cleared
 * (signalled), a new account is registered (signalled) and stored, and the
 * client is online with it. */
static void
test_account_deleted (Fixture *f, gconstpointer data)
{
  PeerOpts gen = { .tls = MYNA_CLIENT_TLS_NONE, .generated = TRUE };
  Peer *p = &f->alice;
  g_autofree char *jid1 = NULL, *pw1 = NULL, *jid2 = NULL, *pw2 = NULL;
  g_autofree char *out = NULL;

  peer_start (f, p, "alice", &gen);
  WAIT_UNTIL (online (p), ONLINE_MS);
  g_assert_cmpuint (p->registered, ==, 1);
  g_assert_true (myna_client_store_get_account (p->store, &jid1, &pw1));
  g_assert_cmpstr (p->registered_jid, ==, jid1);
  g_assert_true (g_str_has_suffix (jid1, "@localhost"));
  g_assert_cmpuint (strlen (jid1), ==, 12 + strlen ("@localhost"));
  g_assert_cmpuint (strlen (pw1), >=, 24);

  /* Offline; the server deletes the account meanwhile. */
  proxy_set_mode (p->proxy, PROXY_REFUSE, 0);
  proxy_cut (p->proxy);
  WAIT_UNTIL (p->disconnected == 1, ONLINE_MS);
  g_assert_cmpint (mynactl (&f->d, &out, "user", "del", jid1, NULL), ==, 0);
  guint events = p->events->len;

  proxy_set_mode (p->proxy, PROXY_PASS, 0);
  myna_client_set_network_available (p->client, TRUE);
  WAIT_UNTIL (p->registered == 2 && online (p), ONLINE_MS);
  g_assert_cmpuint (p->cleared, ==, 1);

  /* In order: cleared, then registered, then online. */
  gint cleared_at = -1, registered_at = -1, online_at = -1;
  for (guint i = events; i < p->events->len; i++)
    {
      const char *e = g_ptr_array_index (p->events, i);
      if (g_str_has_prefix (e, "cleared:") && cleared_at < 0)
        cleared_at = (gint) i;
      else if (g_str_has_prefix (e, "registered:") && registered_at < 0)
        registered_at = (gint) i;
      else if (strcmp (e, "state:authenticated") == 0 && online_at < 0)
        online_at = (gint) i;
    }
  g_assert_cmpint (cleared_at, >=, 0);
  g_assert_cmpint (cleared_at, <, registered_at);
  g_assert_cmpint (registered_at, <, online_at);

  /* New credentials, stored, and in use. */
  g_assert_true (myna_client_store_get_account (p->store, &jid2, &pw2));
  g_assert_cmpstr (jid2, !=, jid1);
  g_assert_cmpstr (pw2, !=, pw1);
  g_assert_cmpstr (p->registered_jid, ==, jid2);
  g_autofree char *bound_prefix = g_strconcat (jid2, "/", NULL);
  g_assert_true (g_str_has_prefix (myna_client_get_bound_jid (p->client), bound_prefix));
}

/* ---- (f) the reconnect waits ----------------------------------------------------------- */

#define BASE_MS 1000
#define MAX_MS 8000

/* Checks that @p's @n-th wait is within the rule's bounds for @failures
 * failures, and that no attempt starts before it has passed. */
static void
check_wait (Peer *p, guint n, guint failures)
{
  MynaClientTestClock *clock = MYNA_CLIENT_TEST_CLOCK (p->clock);

  WAIT_UNTIL (p->delays->len >= n && p->state == MYNA_CLIENT_STATE_RECONNECTING, ONLINE_MS);
  g_assert_cmpuint (p->delays->len, ==, n);
  guint wait = g_array_index (p->delays, guint, n - 1);
  guint hi = myna_client_backoff_delay (failures, BASE_MS, MAX_MS, 0.0);
  guint lo = myna_client_backoff_delay (failures, BASE_MS, MAX_MS, 0.999999);
  g_test_message ("failure %u: wait %u ms (rule: %u..%u)", failures, wait, lo, hi);
  g_assert_cmpuint (wait, >=, lo);
  g_assert_cmpuint (wait, <=, hi);

  guint accepted = proxy_accepted (p->proxy);
  myna_client_test_clock_advance (clock, wait - 1);
  iterate_ready ();
  g_assert_cmpint (p->state, ==, MYNA_CLIENT_STATE_RECONNECTING);
  g_assert_cmpuint (proxy_accepted (p->proxy), ==, accepted);
  myna_client_test_clock_advance (clock, 1);
  WAIT_UNTIL (p->state != MYNA_CLIENT_STATE_RECONNECTING || p->delays->len > n, 5000);
}

/* With a test clock and the proxy refusing: the waits double from the base
 * up to the cap (less their jitter); back in PASS a login resets them; and
 * network-available tries at once. */
static void
test_backoff (Fixture *f, gconstpointer data)
{
  PeerOpts opts = { .tls = MYNA_CLIENT_TLS_NONE, .test_clock = TRUE,
                    .reconnect_base = BASE_MS, .reconnect_max = MAX_MS, .refused = TRUE };
  Peer *p = &f->alice;

  /* The rule itself, at its edges. */
  g_assert_cmpuint (myna_client_backoff_delay (1, BASE_MS, MAX_MS, 0.0), ==, BASE_MS);
  g_assert_cmpuint (myna_client_backoff_delay (3, BASE_MS, MAX_MS, 0.0), ==, 4 * BASE_MS);
  g_assert_cmpuint (myna_client_backoff_delay (30, BASE_MS, MAX_MS, 0.0), ==, MAX_MS);
  g_assert_cmpuint (myna_client_backoff_delay (1, BASE_MS, MAX_MS, 0.999999), ==,
                    BASE_MS - BASE_MS / 4 + 1);

  /* The network refuses from the start: failures 1..6. */
  peer_start (f, p, "alice", &opts);
  WAIT_UNTIL (p->disconnected >= 1, ONLINE_MS);
  for (guint n = 1; n <= 6; n++)
    check_wait (p, n, n);
  g_assert_cmpuint (p->authenticated, ==, 0);
  g_assert_cmpuint (g_array_index (p->delays, guint, 5), >=, MAX_MS - MAX_MS / 4);

  /* Back in PASS: the next attempt logs in. */
  WAIT_UNTIL (p->delays->len == 7 && p->state == MYNA_CLIENT_STATE_RECONNECTING, ONLINE_MS);
  proxy_set_mode (p->proxy, PROXY_PASS, 0);
  myna_client_test_clock_advance (MYNA_CLIENT_TEST_CLOCK (p->clock),
                                  g_array_index (p->delays, guint, 6));
  WAIT_UNTIL (online (p), ONLINE_MS);

  /* A login resets the count: the next loss waits about the base again. */
  proxy_set_mode (p->proxy, PROXY_CUT, 0);
  check_wait (p, 8, 1);
  WAIT_UNTIL (online (p), ONLINE_MS);

  /* The network is gone: no attempt, however long the wait; when it is
   * back, an attempt at once, without the clock moving. */
  guint disconnected = p->disconnected;
  proxy_set_mode (p->proxy, PROXY_CUT, 0);
  WAIT_UNTIL (p->disconnected > disconnected && p->state == MYNA_CLIENT_STATE_RECONNECTING,
              ONLINE_MS);
  g_assert_cmpuint (p->delays->len, ==, 9);
  guint accepted = proxy_accepted (p->proxy);
  myna_client_set_network_available (p->client, FALSE);
  iterate_ready ();
  myna_client_test_clock_advance (MYNA_CLIENT_TEST_CLOCK (p->clock), MAX_MS * 2);
  iterate_ready ();
  g_assert_cmpint (p->state, ==, MYNA_CLIENT_STATE_DISCONNECTED);
  g_assert_cmpuint (proxy_accepted (p->proxy), ==, accepted);
  guint authenticated = p->authenticated;
  myna_client_set_network_available (p->client, TRUE);
  WAIT_UNTIL (p->authenticated > authenticated, ONLINE_MS);
  g_assert_cmpuint (proxy_accepted (p->proxy), ==, accepted + 1);

  /* Waiting, then the network is said to be back: at once. */
  proxy_set_mode (p->proxy, PROXY_CUT, 0);
  WAIT_UNTIL (p->delays->len == 10 && p->state == MYNA_CLIENT_STATE_RECONNECTING, ONLINE_MS);
  authenticated = p->authenticated;
  myna_client_set_network_available (p->client, TRUE);
  WAIT_UNTIL (p->authenticated > authenticated, ONLINE_MS);
  g_assert_cmpuint (p->delays->len, ==, 10);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  signal (SIGPIPE, SIG_IGN);

#define ADD(path, fn) \
  g_test_add (path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
  ADD ("/client-faults/cut", test_cut);
  ADD ("/client-faults/cut-starttls", test_cut_starttls);
  ADD ("/client-faults/blackhole", test_blackhole);
  ADD ("/client-faults/delay", test_delay);
  ADD ("/client-faults/restart", test_restart);
  ADD ("/client-faults/account-deleted", test_account_deleted);
  ADD ("/client-faults/backoff", test_backoff);
#undef ADD
  return g_test_run ();
}
