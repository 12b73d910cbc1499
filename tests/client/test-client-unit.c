/* test-client-unit.c: MynaClient without a server — the backoff rule,
 * and the reconnection state machine on a test clock against a port that
 * refuses connections (the chain fails at once, every time). */
#include <myna/client/myna-client.h>
#include "../integration/mynad-harness.h"

/* ---- the backoff rule ------------------------------------------------------------------ */

/* Values of the rule: doubling from base, the cap, the jitter. */
static void
test_backoff_values (void)
{
  g_assert_cmpuint (myna_client_backoff_delay (1, 2000, 600000, 0.0), ==, 2000);
  g_assert_cmpuint (myna_client_backoff_delay (2, 2000, 600000, 0.0), ==, 4000);
  g_assert_cmpuint (myna_client_backoff_delay (3, 2000, 600000, 0.0), ==, 8000);
  g_assert_cmpuint (myna_client_backoff_delay (9, 2000, 600000, 0.0), ==, 512000);
  g_assert_cmpuint (myna_client_backoff_delay (10, 2000, 600000, 0.0), ==, 600000);
  g_assert_cmpuint (myna_client_backoff_delay (50, 2000, 600000, 0.0), ==, 600000);
  /* d − ⌊d·r/4⌋ */
  g_assert_cmpuint (myna_client_backoff_delay (1, 2000, 600000, 0.5), ==, 1750);
  g_assert_cmpuint (myna_client_backoff_delay (1, 2000, 600000, 0.999999), ==, 1501);
  g_assert_cmpuint (myna_client_backoff_delay (2, 1000, 600000, 0.3), ==, 2000 - 150);
  g_assert_cmpuint (myna_client_backoff_delay (1, 3, 600000, 0.9), ==, 3);   /* ⌊0.675⌋ = 0 */
  g_assert_cmpuint (myna_client_backoff_delay (20, 1000, 8000, 0.5), ==, 7000);
  /* 0 failures counts as the first wait. */
  g_assert_cmpuint (myna_client_backoff_delay (0, 2000, 600000, 0.0), ==, 2000);
  /* a cap under the base wins */
  g_assert_cmpuint (myna_client_backoff_delay (1, 2000, 500, 0.0), ==, 500);
}

/* Every wait lies in [0.75·d, d] and the undisturbed wait never shrinks. */
static void
test_backoff_bounds (void)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (14);
  guint prev = 0;

  for (guint n = 1; n <= 64; n++)
    {
      guint64 d = MIN ((guint64) 1500 << MIN (n - 1, 40u), (guint64) 300000);
      guint top = myna_client_backoff_delay (n, 1500, 300000, 0.0);

      g_assert_cmpuint (top, ==, d);
      g_assert_cmpuint (top, >=, prev);
      prev = top;
      for (guint i = 0; i < 200; i++)
        {
          double r = g_rand_double (rand);
          guint w = myna_client_backoff_delay (n, 1500, 300000, r);
          g_assert_cmpuint (w, <=, d);
          g_assert_cmpuint ((guint64) w * 4, >=, d * 3);
        }
    }
}

/* Huge failure counts and limits do not overflow. */
static void
test_backoff_overflow (void)
{
  g_assert_cmpuint (myna_client_backoff_delay (G_MAXUINT, 2000, 600000, 0.0), ==, 600000);
  g_assert_cmpuint (myna_client_backoff_delay (G_MAXUINT, G_MAXUINT, G_MAXUINT, 0.0), ==,
                    G_MAXUINT);
  g_assert_cmpuint (myna_client_backoff_delay (33, 2000, G_MAXUINT, 0.0), ==, G_MAXUINT);
  g_assert_cmpuint (myna_client_backoff_delay (32, 3, G_MAXUINT, 0.0), ==, G_MAXUINT);
  g_assert_cmpuint (myna_client_backoff_delay (31, 1, G_MAXUINT, 0.0), ==, 1u << 30);
  guint w = myna_client_backoff_delay (1000, G_MAXUINT, G_MAXUINT, 0.999999);
  g_assert_cmpuint (w, >=, (guint) ((guint64) G_MAXUINT * 3 / 4));
  g_assert_cmpuint (w, <, G_MAXUINT);
  /* out-of-range randoms stay in the bounds */
  g_assert_cmpuint (myna_client_backoff_delay (1, 2000, 600000, -1.0), ==, 2000);
  g_assert_cmpuint (myna_client_backoff_delay (1, 2000, 600000, 7.0), ==, 1500);
}

static void
test_state_strings (void)
{
  g_assert_cmpstr (myna_client_state_to_string (MYNA_CLIENT_STATE_STOPPED), ==, "stopped");
  g_assert_cmpstr (myna_client_state_to_string (MYNA_CLIENT_STATE_CONNECTING), ==, "connecting");
  g_assert_cmpstr (myna_client_state_to_string (MYNA_CLIENT_STATE_CONNECTED), ==, "connected");
  g_assert_cmpstr (myna_client_state_to_string (MYNA_CLIENT_STATE_AUTHENTICATED), ==,
                   "authenticated");
  g_assert_cmpstr (myna_client_state_to_string (MYNA_CLIENT_STATE_DISCONNECTED), ==,
                   "disconnected");
  g_assert_cmpstr (myna_client_state_to_string (MYNA_CLIENT_STATE_RECONNECTING), ==,
                   "reconnecting");
}

/* ---- the state machine against a refusing port -------------------------------------------- */

typedef struct {
  MynaClientClock *clock;
  MynaClientStore *store;
  MynaClient      *client;
  GArray          *states;     /* MynaClientState, in order */
  GPtrArray       *reasons;    /* char* (or NULL), with states */
  GArray          *delays;     /* guint ms of each "reconnecting" */
} Fixture;

static void
on_state (MynaClient *client, guint state, const char *reason, Fixture *f)
{
  g_array_append_val (f->states, state);
  g_ptr_array_add (f->reasons, g_strdup (reason));
}

static void
on_reconnecting (MynaClient *client, guint delay, Fixture *f)
{
  g_array_append_val (f->delays, delay);
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  f->clock = myna_client_test_clock_new ();
  f->store = myna_client_store_new (":memory:", &error);
  g_assert_no_error (error);
  f->client = myna_client_new_with_clock (f->store, f->clock);
  f->states = g_array_new (FALSE, FALSE, sizeof (guint));
  f->reasons = g_ptr_array_new_with_free_func (g_free);
  f->delays = g_array_new (FALSE, FALSE, sizeof (guint));
  g_object_set (f->client, "jid", "someone@localhost", "password", "secret",
                "server", "127.0.0.1", "port", (guint) free_port (),
                "tls", (guint) MYNA_CLIENT_TLS_NONE, "reconnect-base", 1000u,
                "reconnect-max", 8000u, "heartbeat-interval", 0u, NULL);
  g_signal_connect (f->client, "state-changed", G_CALLBACK (on_state), f);
  g_signal_connect (f->client, "reconnecting", G_CALLBACK (on_reconnecting), f);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_object (&f->client);
  g_clear_object (&f->store);
  g_clear_object (&f->clock);
  g_array_unref (f->states);
  g_ptr_array_unref (f->reasons);
  g_array_unref (f->delays);
  /* What the client left to the main context (reaping) runs now. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

static gboolean
wake (gpointer data)
{
  return G_SOURCE_CONTINUE;
}

/* Runs the main context until @n "reconnecting" signals were seen (or
 * WAIT_MS passed), then until it is idle. */
static gboolean
wait_delays (Fixture *f, guint n)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) WAIT_MS * 1000;
  guint id = g_timeout_add (20, wake, NULL);

  while (f->delays->len < n && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (id);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  return f->delays->len >= n;
}

static guint
last_state (Fixture *f)
{
  return f->states->len > 0 ? g_array_index (f->states, guint, f->states->len - 1) : G_MAXUINT;
}

/* Runs the main context until nothing is pending. */
static void
drain (void)
{
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

/* The waits follow the rule in sequence; each wait runs on the clock;
 * the states go CONNECTING → DISCONNECTED → RECONNECTING each round. */
static void
test_reconnect_sequence (Fixture *f, gconstpointer data)
{
  MynaClientTestClock *clock = MYNA_CLIENT_TEST_CLOCK (f->clock);
  static const guint caps[] = { 1000, 2000, 4000, 8000, 8000, 8000 };

  myna_client_start (f->client);
  g_assert_cmpuint (g_array_index (f->states, guint, 0), ==, MYNA_CLIENT_STATE_CONNECTING);
  for (guint i = 0; i < G_N_ELEMENTS (caps); i++)
    {
      g_assert_true (wait_delays (f, i + 1));
      guint delay = g_array_index (f->delays, guint, i);
      g_assert_cmpuint (delay, <=, caps[i]);
      g_assert_cmpuint (delay * 4, >=, caps[i] * 3);
      g_assert_cmpuint (myna_client_get_state (f->client), ==, MYNA_CLIENT_STATE_RECONNECTING);
      /* The wait is the only thing left on the clock. */
      g_assert_cmpint (myna_client_test_clock_next (clock), ==, delay);
      g_assert_cmpuint (myna_client_test_clock_pending (clock), ==, 1);
      /* Not a millisecond early. */
      guint before = f->states->len;
      myna_client_test_clock_advance (clock, delay - 1);
      g_assert_cmpuint (f->states->len, ==, before);
      myna_client_test_clock_advance (clock, 1);
      g_assert_cmpuint (last_state (f), ==, MYNA_CLIENT_STATE_CONNECTING);
    }
  g_assert_true (wait_delays (f, G_N_ELEMENTS (caps) + 1));

  /* CONNECTING, DISCONNECTED(reason), RECONNECTING, … */
  g_assert_cmpuint (f->states->len, ==, 3 * (G_N_ELEMENTS (caps) + 1));
  for (guint i = 0; i < f->states->len; i++)
    {
      static const MynaClientState cycle[] = {
        MYNA_CLIENT_STATE_CONNECTING, MYNA_CLIENT_STATE_DISCONNECTED,
        MYNA_CLIENT_STATE_RECONNECTING,
      };
      g_assert_cmpuint (g_array_index (f->states, guint, i), ==, cycle[i % 3]);
      if (cycle[i % 3] == MYNA_CLIENT_STATE_DISCONNECTED)
        g_assert_nonnull (g_ptr_array_index (f->reasons, i));
      else
        g_assert_null (g_ptr_array_index (f->reasons, i));
    }
  g_assert_cmpstr (myna_client_get_bound_jid (f->client), ==, NULL);
}

/* The network coming back skips the wait; going away stops the attempts. */
static void
test_reconnect_network (Fixture *f, gconstpointer data)
{
  MynaClientTestClock *clock = MYNA_CLIENT_TEST_CLOCK (f->clock);

  myna_client_start (f->client);
  g_assert_true (wait_delays (f, 1));
  g_assert_cmpuint (myna_client_get_state (f->client), ==, MYNA_CLIENT_STATE_RECONNECTING);

  /* TRUE while waiting: an attempt now, the wait is gone. */
  myna_client_set_network_available (f->client, TRUE);
  g_assert_cmpuint (myna_client_get_state (f->client), ==, MYNA_CLIENT_STATE_CONNECTING);
  g_assert_true (wait_delays (f, 2));
  /* It failed again: the second wait of the rule. */
  guint d2 = g_array_index (f->delays, guint, 1);
  g_assert_cmpuint (d2, <=, 2000);
  g_assert_cmpuint (d2, >=, 1500);

  /* FALSE: no more attempts, however long. */
  myna_client_set_network_available (f->client, FALSE);
  g_assert_cmpuint (myna_client_get_state (f->client), ==, MYNA_CLIENT_STATE_DISCONNECTED);
  g_assert_cmpint (myna_client_test_clock_next (clock), ==, -1);
  guint seen = f->states->len;
  myna_client_test_clock_advance (clock, 3600 * 1000);
  drain ();
  g_assert_cmpuint (f->states->len, ==, seen);
  g_assert_cmpuint (f->delays->len, ==, 2);

  /* TRUE again: at once. */
  myna_client_set_network_available (f->client, TRUE);
  g_assert_cmpuint (myna_client_get_state (f->client), ==, MYNA_CLIENT_STATE_CONNECTING);
  g_assert_true (wait_delays (f, 3));
  g_assert_cmpuint (g_array_index (f->delays, guint, 2), <=, 4000);
  g_assert_cmpuint (g_array_index (f->delays, guint, 2), >=, 3000);
}

/* start() without a network waits for it. */
static void
test_start_offline (Fixture *f, gconstpointer data)
{
  myna_client_set_network_available (f->client, FALSE);
  myna_client_start (f->client);
  g_assert_cmpuint (myna_client_get_state (f->client), ==, MYNA_CLIENT_STATE_DISCONNECTED);
  drain ();
  g_assert_cmpuint (f->delays->len, ==, 0);
  g_assert_cmpuint (f->states->len, ==, 1);
  myna_client_set_network_available (f->client, TRUE);
  g_assert_cmpuint (myna_client_get_state (f->client), ==, MYNA_CLIENT_STATE_CONNECTING);
  g_assert_true (wait_delays (f, 1));
}

/* logout: STOPPED, no more attempts (while waiting, and while connecting). */
static void
test_reconnect_logout (Fixture *f, gconstpointer data)
{
  MynaClientTestClock *clock = MYNA_CLIENT_TEST_CLOCK (f->clock);

  myna_client_start (f->client);
  g_assert_true (wait_delays (f, 1));
  myna_client_logout (f->client);
  g_assert_cmpuint (myna_client_get_state (f->client), ==, MYNA_CLIENT_STATE_STOPPED);
  g_assert_cmpuint (last_state (f), ==, MYNA_CLIENT_STATE_STOPPED);
  g_assert_cmpint (myna_client_test_clock_next (clock), ==, -1);
  guint seen = f->states->len;
  myna_client_test_clock_advance (clock, 3600 * 1000);
  myna_client_set_network_available (f->client, TRUE);
  drain ();
  g_assert_cmpuint (f->states->len, ==, seen);

  /* Again, logging out in the middle of an attempt. */
  myna_client_start (f->client);
  g_assert_cmpuint (myna_client_get_state (f->client), ==, MYNA_CLIENT_STATE_CONNECTING);
  myna_client_logout (f->client);
  g_assert_cmpuint (myna_client_get_state (f->client), ==, MYNA_CLIENT_STATE_STOPPED);
  seen = f->states->len;
  guint delays = f->delays->len;
  /* The cancelled attempt's answer comes and changes nothing. */
  gint64 deadline = g_get_monotonic_time () + 500 * 1000;
  guint id = g_timeout_add (20, wake, NULL);
  while (g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (id);
  myna_client_test_clock_advance (clock, 3600 * 1000);
  drain ();
  g_assert_cmpuint (f->states->len, ==, seen);
  g_assert_cmpuint (f->delays->len, ==, delays);
  g_assert_cmpuint (myna_client_get_state (f->client), ==, MYNA_CLIENT_STATE_STOPPED);
}

/* Without a stored account, with auto-register off and no credentials:
 * STOPPED with a reason, no attempt. */
static void
test_no_account (Fixture *f, gconstpointer data)
{
  g_object_set (f->client, "jid", NULL, "password", NULL, "auto-register", FALSE, NULL);
  myna_client_start (f->client);
  g_assert_cmpuint (myna_client_get_state (f->client), ==, MYNA_CLIENT_STATE_STOPPED);
  drain ();
  g_assert_cmpuint (f->states->len, ==, 0);
  g_assert_cmpuint (f->delays->len, ==, 0);
}

/* Sending while offline stores the message QUEUED; a bad JID is refused. */
static void
test_send_offline (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *id = myna_client_send_message (f->client, "friend@localhost", "hello", &error);

  g_assert_no_error (error);
  g_assert_nonnull (id);
  g_autoptr(MynaClientMessage) m =
      myna_client_store_get_message (f->store, MYNA_CLIENT_DIRECTION_OUT, id);
  g_assert_nonnull (m);
  g_assert_cmpuint (m->state, ==, MYNA_CLIENT_MESSAGE_QUEUED);
  g_assert_cmpstr (m->body, ==, "hello");
  g_assert_cmpstr (m->peer, ==, "friend@localhost");

  char *bad = myna_client_send_message (f->client, "not a jid@@", "x", &error);
  g_assert_null (bad);
  g_assert_nonnull (error);
  g_clear_error (&error);
  bad = myna_client_send_message (f->client, "friend@localhost", "bell \a", &error);
  g_assert_null (bad);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
}

static void
iq_done (GObject *source, GAsyncResult *res, gpointer data)
{
  GError **out = data;
  g_autofree char *xml = myna_client_send_iq_finish (MYNA_CLIENT (source), res, out);

  g_assert_null (xml);
}

/* send_iq offline fails with NOT_CONNECTED (asynchronously). */
static void
test_iq_offline (Fixture *f, gconstpointer data)
{
  GError *error = NULL;

  myna_client_send_iq (f->client, "<iq type='get'><query xmlns='jabber:iq:version'/></iq>", 0,
                       NULL, iq_done, &error);
  g_assert_null (error);
  drain ();
  g_assert_error (error, MYNA_CLIENT_ERROR, MYNA_CLIENT_ERROR_NOT_CONNECTED);
  g_clear_error (&error);
  myna_client_send_iq (f->client, "<message/>", 0, NULL, iq_done, &error);
  drain ();
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/client/backoff/values", test_backoff_values);
  g_test_add_func ("/client/backoff/bounds", test_backoff_bounds);
  g_test_add_func ("/client/backoff/overflow", test_backoff_overflow);
  g_test_add_func ("/client/state-strings", test_state_strings);
  g_test_add ("/client/reconnect/sequence", Fixture, NULL, fixture_setup,
              test_reconnect_sequence, fixture_teardown);
  g_test_add ("/client/reconnect/network", Fixture, NULL, fixture_setup,
              test_reconnect_network, fixture_teardown);
  g_test_add ("/client/reconnect/start-offline", Fixture, NULL, fixture_setup,
              test_start_offline, fixture_teardown);
  g_test_add ("/client/reconnect/logout", Fixture, NULL, fixture_setup,
              test_reconnect_logout, fixture_teardown);
  g_test_add ("/client/no-account", Fixture, NULL, fixture_setup, test_no_account,
              fixture_teardown);
  g_test_add ("/client/send-offline", Fixture, NULL, fixture_setup, test_send_offline,
              fixture_teardown);
  g_test_add ("/client/iq-offline", Fixture, NULL, fixture_setup, test_iq_offline,
              fixture_teardown);
  return g_test_run ();
}
