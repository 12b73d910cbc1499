/* test-c2s: logging in and talking over raw sockets against a real mynad —
 * SASL PLAIN and SCRAM-SHA-256 (computed with the SDK's SCRAM primitives),
 * wrong credentials, throttling, malformed SASL, resource binding and its
 * conflicts, from-stamping and spoofing, IQ routing, accounts via mynactl. */
#include "mynad-harness.h"

#include <myna/sasl.h>
#include <myna/storage.h>

#include <fcntl.h>
#include <stdlib.h>

typedef struct {
  Mynad d;
} Fixture;

static void
setup (Fixture *f, gconstpointer extra)
{
  g_autofree char *conf = g_strconcat (MYNAD_PLAIN_AUTH, "max_failures = 3\n",
                                       extra != NULL ? (const char *) extra : "", NULL);
  f->d.modules = MYNAD_DEFAULT_MODULES ";lazytest";
  mynad_start (&f->d, conf);
  mynad_add_user (&f->d, "alice", "wonderland");
  mynad_add_user (&f->d, "bob", "builder");
}

static void
teardown (Fixture *f, gconstpointer unused)
{
  g_assert_cmpint (mynad_stop (&f->d), ==, 0);
}

static void
send_plain (Client *c, const char *user, const char *password)
{
  g_autofree char *raw = g_strdup_printf ("%c%s%c%s", 0, user, 0, password);
  g_autofree char *b64 = g_base64_encode ((const guchar *) raw, 2 + strlen (user) + strlen (password));
  g_autofree char *auth = g_strdup_printf ("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                                           "mechanism='PLAIN'>%s</auth>", b64);
  client_send (c, auth);
}

static void
test_features_offer_mechanisms (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c = client_open_stream (&f->d);

  g_assert_nonnull (strstr (c->in->str, "<mechanism>SCRAM-SHA-256</mechanism>"));
  g_assert_nonnull (strstr (c->in->str, "<mechanism>SCRAM-SHA-1</mechanism>"));
  g_assert_nonnull (strstr (c->in->str, "<mechanism>PLAIN</mechanism>"));
  /* No TLS here, so no -PLUS. */
  g_assert_null (strstr (c->in->str, "-PLUS"));
}

static void
test_plain_login_and_message (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) a = client_login (&f->d, "alice", "wonderland", "phone");
  g_autoptr(Client) b = client_login (&f->d, "bob", "builder", "desk");

  g_assert_nonnull (a);
  g_assert_nonnull (b);
  /* Messages to a full JID are delivered with `from` stamped. */
  client_send (a, "<message to='bob@localhost/desk' type='chat' id='m1'><body>hi bob</body></message>");
  g_assert_true (client_expect (b, "hi bob"));
  g_assert_nonnull (strstr (b->in->str, "from='alice@localhost/phone'"));
  /* A ping to the server is answered. */
  client_send (a, "<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
  g_assert_true (client_expect (a, "id='p1'"));
  g_assert_nonnull (strstr (a->in->str, "type='result'"));
  /* An unrouted namespace: service-unavailable. */
  client_send (a, "<iq type='get' id='u1' to='localhost'><query xmlns='urn:nobody'/></iq>");
  g_assert_true (client_expect (a, "<service-unavailable"));
}

static void
test_wrong_password (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c = client_open_stream (&f->d);

  send_plain (c, "alice", "nope");
  g_assert_true (client_expect (c, "<not-authorized/>"));
  /* Unknown users look the same. */
  g_string_truncate (c->in, 0);
  send_plain (c, "mallory", "x");
  g_assert_true (client_expect (c, "<not-authorized/>"));
  g_assert_true (client_is_open (c));
  /* After max_failures from this address on this account, the address is
   * throttled for it, right password or not... */
  for (int i = 0; i < 2; i++)
    {
      g_string_truncate (c->in, 0);
      send_plain (c, "alice", "nope2");
      g_assert_true (client_expect (c, "<not-authorized/>"));
    }
  g_string_truncate (c->in, 0);
  send_plain (c, "alice", "wonderland");
  g_assert_true (client_expect (c, "<temporary-auth-failure/>"));
  /* ... but not for other accounts (four failures are under
   * max_failures_per_address). */
  g_autoptr(Client) b = client_login (&f->d, "bob", "builder", "desk");
  g_assert_nonnull (b);
}

static void
test_malformed_sasl (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c = client_open_stream (&f->d);

  client_send (c, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>!!notbase64</auth>");
  g_assert_true (client_expect (c, "<incorrect-encoding/>"));
  client_send (c, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='X-BOGUS'>AA==</auth>");
  g_assert_true (client_expect (c, "<invalid-mechanism/>"));
  client_send (c, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>"
                  "eCwsbj1hbGljZQ==</auth>");          /* "x,,n=alice" */
  g_assert_true (client_expect (c, "<malformed-request/>"));
  g_assert_true (client_is_open (c));
}

static void scram_login (Fixture *f, const char *user, const char *password,
                         guint iterations, gboolean bad_nonce);

/* Sends a SCRAM-SHA-256 client-first for @user on @c and returns the
 * decoded server-first message, or NULL when the answer is a failure. */
static char *
scram_challenge (Client *c, const char *user)
{
  g_autofree char *cfirst = g_strdup_printf ("n,,n=%s,r=clientnonce123", user);
  g_autofree char *b64 = g_base64_encode ((const guchar *) cfirst, strlen (cfirst));
  g_autofree char *auth = g_strdup_printf ("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                                           "mechanism='SCRAM-SHA-256'>%s</auth>", b64);
  gsize len;

  g_string_truncate (c->in, 0);
  client_send (c, auth);
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;
  while (strstr (c->in->str, "</challenge>") == NULL && strstr (c->in->str, "</failure>") == NULL
         && !c->eof && g_get_monotonic_time () < deadline)
    client_read (c, (int) ((deadline - g_get_monotonic_time ()) / 1000));
  char *start = strstr (c->in->str, "<challenge");
  if (start == NULL)
    return NULL;
  start = strchr (start, '>') + 1;
  g_autofree char *chal64 = g_strndup (start, (gsize) (strstr (start, "</challenge>") - start));
  char *sfirst = (char *) g_base64_decode (chal64, &len);
  sfirst = g_realloc (sfirst, len + 1);
  sfirst[len] = '\0';
  return sfirst;
}

/* "s=…,i=…" of a server-first message (the nonce differs every time). */
static char *
salt_and_iterations (const char *server_first)
{
  const char *s = strstr (server_first, ",s=");

  g_assert_nonnull (s);
  return g_strdup (s + 1);
}

/* A name with no account gets the challenge an account would get: a salt
 * of the same length and the same iteration count, the same salt every
 * time, across a restart too (issue 10, item 8). */
static void
test_scram_unknown_user (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c1 = client_open_stream (&f->d);
  g_autofree char *real = scram_challenge (c1, "alice");
  g_autoptr(Client) c2 = client_open_stream (&f->d);
  g_autofree char *ghost1 = scram_challenge (c2, "nobody");
  g_autoptr(Client) c3 = client_open_stream (&f->d);
  g_autofree char *ghost2 = scram_challenge (c3, "nobody");
  g_autoptr(Client) c4 = client_open_stream (&f->d);
  g_autofree char *other = scram_challenge (c4, "nobody2");

  g_assert_nonnull (real);
  g_assert_nonnull (ghost1);
  g_assert_nonnull (ghost2);
  g_autofree char *sr = salt_and_iterations (real), *s1 = salt_and_iterations (ghost1),
                  *s2 = salt_and_iterations (ghost2), *so = salt_and_iterations (other);
  g_test_message ("alice: %s; nobody: %s, then %s; nobody2: %s", sr, s1, s2, so);
  g_assert_cmpstr (s1, ==, s2);
  g_assert_cmpstr (s1, !=, so);
  /* Same shape as a real one: base64 of 16 bytes, and i=4096 here. */
  g_assert_cmpuint (strlen (s1), ==, strlen (sr));
  g_assert_cmpstr (strchr (s1, ','), ==, strchr (sr, ','));

  client_free (g_steal_pointer (&c1));
  client_free (g_steal_pointer (&c2));
  client_free (g_steal_pointer (&c3));
  client_free (g_steal_pointer (&c4));
  mynad_restart (&f->d);
  g_autoptr(Client) c5 = client_open_stream (&f->d);
  g_autofree char *ghost3 = scram_challenge (c5, "nobody");
  g_assert_nonnull (ghost3);
  g_autofree char *s3 = salt_and_iterations (ghost3);
  g_assert_cmpstr (s3, ==, s1);
}

/* Rewrites the configuration's last "scram_iterations = @from" to @to. */
static void
set_scram_iterations (Fixture *f, const char *from, const char *to)
{
  g_autofree char *conf = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (g_file_get_contents (f->d.conf_path, &conf, NULL, &error));
  g_autofree char *old = g_strconcat ("scram_iterations = ", from, "\n", NULL);
  g_autofree char *line = g_strconcat ("scram_iterations = ", to, "\n", NULL);
  char *at = g_strrstr (conf, old);
  g_assert_nonnull (at);
  *at = '\0';
  g_autofree char *changed = g_strconcat (conf, line, at + strlen (old), NULL);
  g_assert_true (g_file_set_contents (f->d.conf_path, changed, -1, &error));
}

#define GHOSTS 100

/* The "s=…,i=…" answered to GHOSTS names without an account, over @c. */
static GPtrArray *
ghost_challenges (Client *c)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; i < GHOSTS; i++)
    {
      g_autofree char *name = g_strdup_printf ("ghost%u", i);
      g_autofree char *sfirst = scram_challenge (c, name);
      g_assert_nonnull (sfirst);
      g_ptr_array_add (out, salt_and_iterations (sfirst));
    }
  return out;
}

static guint
count_with_suffix (GPtrArray *answers, const char *suffix)
{
  guint n = 0;

  for (guint i = 0; i < answers->len; i++)
    n += g_str_has_suffix (answers->pdata[i], suffix);
  return n;
}

/* Stands for a database from before the histogram of iteration counts:
 * removes it (mynad keeps no copy in memory). */
static void
drop_iteration_histogram (Fixture *f)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *db = g_build_filename (f->d.dir, "myna.db", NULL);
  g_autoptr(MynaStorage) st = myna_storage_open (db, &error);

  g_assert_no_error (error);
  g_autofree char *was = myna_kv_get (st, "localhost", "", "account-stats", "iterations", NULL);
  g_test_message ("histogram was: %s", was != NULL ? was : "(none)");
  myna_kv_set (st, "localhost", "", "account-stats", "iterations", NULL, NULL, NULL, NULL);
  g_assert_true (myna_storage_flush (st, &error));
}

/* Upgrading from scram_iterations 4096 (alice and bob) to 10000 on a
 * database without the histogram of iteration counts: unknown names
 * answer in the proportions of the stored accounts' counts, so all 4096
 * while every account has it, not the new count (issue 10, item 8, after
 * review); later, with one account at each count, about half each. */
static void
test_iterations_raised_mix (Fixture *f, gconstpointer unused)
{
  drop_iteration_histogram (f);
  set_scram_iterations (f, "4096", "10000");
  mynad_restart (&f->d);

  g_autoptr(Client) c = client_open_stream (&f->d);
  g_autoptr(GPtrArray) ghosts = ghost_challenges (c);
  g_assert_cmpuint (count_with_suffix (ghosts, ",i=4096"), ==, GHOSTS);
  g_assert_true (mynad_wait_log (&f->d, "counted the iteration counts of 2 accounts", WAIT_MS));
  scram_login (f, "alice", "wonderland", 4096, FALSE);     /* still logs in */

  /* carol at 10000 and bob deleted: one account at each count, so about
   * half the names answer each (binomial, 100 draws: 25..75 is five
   * standard deviations). */
  mynad_add_user (&f->d, "carol", "christmas");
  g_autofree char *out = NULL;
  g_assert_cmpint (mynactl (&f->d, &out, "user", "del", "bob@localhost", NULL), ==, 0);
  g_autoptr(GPtrArray) mixed = ghost_challenges (c);
  guint old = count_with_suffix (mixed, ",i=4096"), raised = count_with_suffix (mixed, ",i=10000");
  g_test_message ("alice at 4096, carol at 10000: %u names at 4096, %u at 10000", old, raised);
  g_assert_cmpuint (old + raised, ==, GHOSTS);
  g_assert_cmpuint (old, >=, 25);
  g_assert_cmpuint (raised, >=, 25);
  /* Only the counts move, never the salts. */
  for (guint i = 0; i < GHOSTS; i++)
    {
      const char *was = ghosts->pdata[i];
      g_assert_true (strncmp (mixed->pdata[i], was, (gsize) (strstr (was, ",i=") - was)) == 0);
    }
  /* alice deleted: carol's 10000 is the only count. */
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (mynactl (&f->d, &out, "user", "del", "alice@localhost", NULL), ==, 0);
  g_autoptr(GPtrArray) shifted = ghost_challenges (c);
  g_assert_cmpuint (count_with_suffix (shifted, ",i=10000"), ==, GHOSTS);
}

/* After raising scram_iterations, a PLAIN login re-hashes the account's
 * credentials at the new count (the password is known then), as Prosody
 * and ejabberd users expect a raise to take effect; SCRAM logins then
 * get the new count, and both mechanisms still work. */
static void
test_iterations_raised_plain_upgrades (Fixture *f, gconstpointer unused)
{
  set_scram_iterations (f, "4096", "10000");
  mynad_restart (&f->d);

  g_autoptr(Client) a = client_login (&f->d, "alice", "wonderland", "phone");
  g_assert_nonnull (a);
  g_assert_true (mynad_wait_log (&f->d, "alice@localhost: credentials re-hashed from 4096 to 10000",
                                 WAIT_MS));
  scram_login (f, "alice", "wonderland", 10000, FALSE);
  scram_login (f, "bob", "builder", 4096, FALSE);
  g_autoptr(Client) a2 = client_login (&f->d, "alice", "wonderland", "desk");
  g_assert_nonnull (a2);
  /* A wrong password re-hashes nothing. */
  g_autoptr(Client) c = client_open_stream (&f->d);
  send_plain (c, "bob", "wrong");
  g_assert_true (client_expect (c, "<not-authorized/>"));
  scram_login (f, "bob", "builder", 4096, FALSE);
}

/* An unknown name answers the same salt and count before and after the
 * upgrade's restart, and again across a restart after the mix changed. */
static void
test_iterations_raised_stable (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c = client_open_stream (&f->d);
  g_autoptr(GPtrArray) before = ghost_challenges (c);

  client_free (g_steal_pointer (&c));
  set_scram_iterations (f, "4096", "10000");
  mynad_restart (&f->d);
  c = client_open_stream (&f->d);
  g_autoptr(GPtrArray) after = ghost_challenges (c);
  for (guint i = 0; i < GHOSTS; i++)
    g_assert_cmpstr (after->pdata[i], ==, before->pdata[i]);

  mynad_add_user (&f->d, "carol", "christmas");
  g_autoptr(GPtrArray) mixed = ghost_challenges (c);
  client_free (g_steal_pointer (&c));
  mynad_restart (&f->d);
  c = client_open_stream (&f->d);
  g_autoptr(GPtrArray) again = ghost_challenges (c);
  for (guint i = 0; i < GHOSTS; i++)
    g_assert_cmpstr (again->pdata[i], ==, mixed->pdata[i]);
}

/* SCRAM exchanges abandoned after the challenge count as failures of the
 * address on the account (issue 10, item 8). */
static void
test_scram_aborts_counted (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c = client_open_stream (&f->d);

  for (int i = 0; i < 3; i++)
    {
      g_autofree char *sfirst = scram_challenge (c, "alice");
      g_assert_nonnull (sfirst);
      g_string_truncate (c->in, 0);
      client_send (c, "<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
      g_assert_true (client_expect (c, "<aborted/>"));
    }
  g_string_truncate (c->in, 0);
  send_plain (c, "alice", "wonderland");
  g_assert_true (client_expect (c, "<temporary-auth-failure/>"));
}

/* PLAIN with a wrong password for alice and bob against unknown names,
 * the best of two each (against scheduling noise): an unknown name must
 * cost at least a quarter of a known one's check. */
static void
assert_plain_unknown_as_slow (Client *c)
{
  gint64 known = G_MAXINT64, unknown = G_MAXINT64;

  for (int i = 0; i < 2; i++)
    {
      gint64 t0 = g_get_monotonic_time ();
      g_string_truncate (c->in, 0);
      send_plain (c, i == 0 ? "alice" : "bob", "wrong");
      g_assert_true (client_expect (c, "<not-authorized/>"));
      known = MIN (known, g_get_monotonic_time () - t0);
      t0 = g_get_monotonic_time ();
      g_string_truncate (c->in, 0);
      send_plain (c, i == 0 ? "nobody" : "nobody2", "wrong");
      g_assert_true (client_expect (c, "<not-authorized/>"));
      unknown = MIN (unknown, g_get_monotonic_time () - t0);
    }
  g_test_message ("wrong password: %" G_GINT64_FORMAT " us; unknown name: %" G_GINT64_FORMAT
                  " us", known, unknown);
  g_assert_cmpint (unknown, >=, known / 4);
}

/* PLAIN spends the same hashing on a name with no account as on a wrong
 * password (issue 10, item 8): at 1,000,000 iterations a check takes
 * about 0.1 s, and an unknown name used to be answered at once. */
static void
test_plain_unknown_timing (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c = client_open_stream (&f->d);

  /* This machine is shared: a quarter is far from the 0.3 ms an unknown
   * name took. */
  assert_plain_unknown_as_slow (c);
}

/* Empty SASL data (RFC 6120 §6.4.2) in every place a client can send it:
 * an empty <response/> (self-closing or not, or white space only) and
 * "=" after the server's empty challenge, for PLAIN and both SCRAMs, and
 * after a valid SCRAM client-first (an empty client-final); "=" as the
 * initial response.  Each gets <malformed-request/> on a stream that stays
 * open, and the server lives on (issue 10: mynad crashed on these). */
static const char *const empty_responses[] = {
  "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
  "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'></response>",
  "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'> </response>",
  "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>=</response>",
};

static void
expect_malformed (Fixture *f, Client *c, const char *what)
{
  if (!client_expect (c, "<malformed-request/>"))
    g_error ("%s: no <malformed-request/>; got: %s; mynad log: %s", what, c->in->str,
             f->d.log->str);
  g_assert_true (client_is_open (c));
  g_string_truncate (c->in, 0);
}

static void
test_empty_sasl_data (Fixture *f, gconstpointer unused)
{
  static const char *const mechs[] = { "PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256" };
  g_autofree char *cfirst = g_base64_encode ((const guchar *) "n,,n=alice,r=abcdef", 19);

  for (guint m = 0; m < G_N_ELEMENTS (mechs); m++)
    {
      g_autoptr(Client) c = client_open_stream (&f->d);
      g_autofree char *bare = g_strdup_printf ("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                                               "mechanism='%s'/>", mechs[m]);
      g_autofree char *eq = g_strdup_printf ("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                                             "mechanism='%s'>=</auth>", mechs[m]);
      g_autofree char *first = g_strdup_printf ("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                                                "mechanism='%s'>%s</auth>", mechs[m], cfirst);

      g_string_truncate (c->in, 0);
      for (guint r = 0; r < G_N_ELEMENTS (empty_responses); r++)
        {
          g_autofree char *what = g_strdup_printf ("%s, then %s", mechs[m], empty_responses[r]);
          client_send (c, bare);
          g_assert_true (client_expect (c, "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"));
          client_send (c, empty_responses[r]);
          expect_malformed (f, c, what);
          if (m == 0)
            continue;
          /* An empty client-final after a valid client-first. */
          client_send (c, first);
          g_assert_true (client_expect (c, "</challenge>"));
          client_send (c, empty_responses[r]);
          expect_malformed (f, c, what);
        }
      /* "=": a zero-length initial response, not an absent one. */
      client_send (c, eq);
      expect_malformed (f, c, eq);
    }
  /* The server is still there and still logs people in. */
  g_autoptr(Client) a = client_login (&f->d, "alice", "wonderland", "after");
  g_assert_nonnull (a);
}

/* The same after a change of scram_iterations: PLAIN hashes an unknown
 * name at a count drawn from the stored accounts' counts, not at the
 * configured one.  Accounts made at 1,000,000 (about 0.1 s a check), the
 * count then lowered to 4096: an unknown name used to be answered at
 * once. */
static void
test_iterations_changed_plain_timing (Fixture *f, gconstpointer unused)
{
  set_scram_iterations (f, "1000000", "4096");
  mynad_restart (&f->d);
  g_autoptr(Client) c = client_open_stream (&f->d);
  assert_plain_unknown_as_slow (c);
}

/* A SCRAM-SHA-256 client built from the SDK's primitives: logs @user in
 * with @password, expecting the server to name @iterations. */
static void
scram_login (Fixture *f, const char *user, const char *password, guint iterations,
             gboolean bad_nonce)
{
  g_autoptr(Client) c = client_open_stream (&f->d);
  g_autofree char *cfirst_bare = g_strdup_printf ("n=%s,r=clientnonce123", user);
  g_autofree char *cfirst = g_strconcat ("n,,", cfirst_bare, NULL);
  g_autofree char *b64 = g_base64_encode ((const guchar *) cfirst, strlen (cfirst));
  g_autofree char *auth = g_strdup_printf ("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                                           "mechanism='SCRAM-SHA-256'>%s</auth>", b64);

  client_send (c, auth);
  g_assert_true (client_expect (c, "</challenge>"));
  char *start = strstr (c->in->str, "<challenge");
  start = strchr (start, '>') + 1;
  g_autofree char *chal64 = g_strndup (start, (gsize) (strstr (start, "</challenge>") - start));
  gsize len;
  g_autofree char *sfirst = (char *) g_base64_decode (chal64, &len);
  sfirst = g_realloc (sfirst, len + 1);
  sfirst[len] = '\0';
  g_auto(GStrv) parts = g_strsplit (sfirst, ",", -1);
  g_assert_true (g_str_has_prefix (parts[0], "r=clientnonce123"));
  gsize salt_len;
  g_autofree guchar *salt_raw = g_base64_decode (parts[1] + 2, &salt_len);
  g_autoptr(GBytes) salt = g_bytes_new (salt_raw, salt_len);
  guint iters = (guint) atoi (parts[2] + 2);
  g_assert_cmpuint (iters, ==, iterations);

  const char *nonce = bad_nonce ? "r=forged" : parts[0];
  g_autofree char *without_proof = g_strdup_printf ("c=biws,%s", nonce);
  g_autofree char *auth_message = g_strdup_printf ("%s,%s,%s", cfirst_bare, sfirst, without_proof);
  g_autoptr(GBytes) salted = myna_scram_salted_password (MYNA_SCRAM_SHA256, password, salt, iters);
  g_autoptr(GBytes) stored = NULL, server = NULL;
  myna_scram_keys (MYNA_SCRAM_SHA256, salted, &stored, &server);
  /* ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage); ClientKey =
   * HMAC(SaltedPassword, "Client Key"). */
  guchar client_key[32], sig[32], proof[32];
  gsize klen = 32;
  GHmac *h = g_hmac_new (G_CHECKSUM_SHA256, g_bytes_get_data (salted, NULL), 32);
  g_hmac_update (h, (const guchar *) "Client Key", 10);
  g_hmac_get_digest (h, client_key, &klen);
  g_hmac_unref (h);
  h = g_hmac_new (G_CHECKSUM_SHA256, g_bytes_get_data (stored, NULL), 32);
  g_hmac_update (h, (const guchar *) auth_message, strlen (auth_message));
  klen = 32;
  g_hmac_get_digest (h, sig, &klen);
  g_hmac_unref (h);
  for (int i = 0; i < 32; i++)
    proof[i] = client_key[i] ^ sig[i];
  g_autofree char *proof64 = g_base64_encode (proof, 32);
  g_autofree char *final = g_strdup_printf ("%s,p=%s", without_proof, proof64);
  g_autofree char *final64 = g_base64_encode ((const guchar *) final, strlen (final));
  g_autofree char *resp = g_strdup_printf ("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>%s</response>",
                                           final64);
  g_string_truncate (c->in, 0);
  client_send (c, resp);
  if (bad_nonce)
    {
      g_assert_true (client_expect (c, "<not-authorized/>"));
      return;
    }
  g_assert_true (client_expect (c, "</success>"));
  /* The server proves it knows the key too: v=ServerSignature. */
  g_autoptr(GBytes) ssig = myna_scram_server_signature (MYNA_SCRAM_SHA256, server, auth_message);
  g_autofree char *ssig64 = g_base64_encode (g_bytes_get_data (ssig, NULL), 32);
  g_autofree char *v = g_strconcat ("v=", ssig64, NULL);
  g_autofree char *v64 = g_base64_encode ((const guchar *) v, strlen (v));
  g_assert_nonnull (strstr (c->in->str, v64));
}

static void
scram_sha256 (Fixture *f, gboolean bad_nonce)
{
  scram_login (f, "alice", "wonderland", 4096, bad_nonce);
}

static void
test_scram_sha256 (Fixture *f, gconstpointer unused)
{
  scram_sha256 (f, FALSE);
}

static void
test_scram_bad_nonce (Fixture *f, gconstpointer unused)
{
  scram_sha256 (f, TRUE);
}

static void
test_bind_conflict_kicks_old (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) first = client_login (&f->d, "alice", "wonderland", "same");
  g_autoptr(Client) second = client_login (&f->d, "alice", "wonderland", "same");

  g_assert_nonnull (first);
  g_assert_nonnull (second);
  g_assert_true (client_expect (first, "<conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"));
  g_assert_true (client_expect_closed (first));
  g_assert_true (client_is_open (second));
}

static void
test_generated_resource (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c = client_connect (&f->d);
  g_autofree char *raw = g_strdup_printf ("%c%s%c%s", 0, "bob", 0, "builder");
  g_autofree char *b64 = g_base64_encode ((const guchar *) raw, 2 + 3 + 7);
  g_autofree char *auth = g_strdup_printf ("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                                           "mechanism='PLAIN'>%s</auth>", b64);

  client_send (c, STREAM_OPEN ("localhost"));
  g_assert_true (client_expect_features (c));
  client_send (c, auth);
  g_assert_true (client_expect (c, "<success"));
  client_send (c, STREAM_OPEN ("localhost"));
  g_assert_true (client_expect (c, "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"));
  client_send (c, "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
  g_assert_true (client_expect (c, "<jid>bob@localhost/"));
  client_send (c, "<iq type='set' id='s'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
  g_assert_true (client_expect (c, "id='s'"));
}

static void
test_spoofed_from (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) a = client_login (&f->d, "alice", "wonderland", "r");

  client_send (a, "<message from='bob@localhost/desk' to='alice@localhost/r'><body>x</body></message>");
  g_assert_true (client_expect (a, "<invalid-from"));
  g_assert_true (client_expect_closed (a));
}

static void
test_iq_without_id_and_bad_to (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) a = client_login (&f->d, "alice", "wonderland", "r");

  client_send (a, "<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
  g_assert_true (client_expect (a, "<bad-request"));
  g_string_truncate (a->in, 0);
  client_send (a, "<message to='@@bad' id='j'><body>x</body></message>");
  g_assert_true (client_expect (a, "<jid-malformed"));
  g_string_truncate (a->in, 0);
  client_send (a, "<message to='nobody@localhost' type='chat' id='n'><body>x</body></message>");
  g_assert_true (client_expect (a, "<service-unavailable"));
  g_string_truncate (a->in, 0);
  client_send (a, "<message to='x@elsewhere.example' id='r'><body>x</body></message>");
  g_assert_true (client_expect (a, "<remote-server-not-found"));
  client_send (a, "<bogus/>");
  g_assert_true (client_expect (a, "<unsupported-stanza-type"));
}

static void
test_accounts_via_mynactl (Fixture *f, gconstpointer unused)
{
  g_autofree char *out = NULL, *out2 = NULL, *out3 = NULL, *out4 = NULL;

  g_assert_cmpint (mynactl (&f->d, &out, "user", "list", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "alice@localhost\nbob@localhost\n"));
  g_assert_cmpint (mynactl_stdin (&f->d, "x\n", &out2, "user", "add", "alice@localhost",
                                  NULL), ==, 1);
  g_assert_nonnull (strstr (out2, "exists"));
  int rc = mynactl_stdin (&f->d, "new pass\n", &out3, "user", "passwd", "alice@localhost",
                          NULL);
  g_test_message ("user passwd: %s", out3);
  g_assert_cmpint (rc, ==, 0);
  g_autoptr(Client) c = client_login (&f->d, "alice", "new pass", "r");
  g_assert_nonnull (c);
  g_assert_cmpint (mynactl (&f->d, &out4, "user", "del", "bob@localhost", NULL), ==, 0);
  g_autoptr(Client) b = client_open_stream (&f->d);
  send_plain (b, "bob", "builder");
  g_assert_true (client_expect (b, "<not-authorized/>"));
}

/* A password on mynactl's command line (which every local user sees in
 * ps and /proc) is refused, and nothing changes; standard input is read
 * one line at a time, and nothing else. */
static void
test_mynactl_password_not_in_argv (Fixture *f, gconstpointer unused)
{
  g_autofree char *out = NULL, *out2 = NULL, *out3 = NULL, *out4 = NULL, *out5 = NULL;
  g_autofree char *out6 = NULL;

  g_assert_cmpint (mynactl_stdin (&f->d, "other\n", &out, "user", "add", "carol@localhost",
                                  "carol-pw", NULL), ==, 2);
  g_assert_nonnull (strstr (out, "command line"));
  g_assert_cmpint (mynactl_stdin (&f->d, "other\n", &out2, "user", "passwd",
                                  "alice@localhost", "stolen", NULL), ==, 2);
  g_assert_nonnull (strstr (out2, "command line"));
  g_autofree char *list = NULL;
  g_assert_cmpint (mynactl (&f->d, &list, "user", "list", NULL), ==, 0);
  g_assert_null (strstr (list, "carol@localhost"));
  g_autoptr(Client) a = client_login (&f->d, "alice", "wonderland", "r");
  g_assert_nonnull (a);
  /* Standard input: the first line is the password, line end excluded. */
  g_assert_cmpint (mynactl_stdin (&f->d, "carol secret\r\nignored\n", &out3, "user", "add",
                                  "carol@localhost", NULL), ==, 0);
  g_autoptr(Client) c = client_login (&f->d, "carol", "carol secret", "r");
  g_assert_nonnull (c);
  /* Nothing on standard input, an empty line, an overlong line: refused. */
  g_assert_cmpint (mynactl (&f->d, &out4, "user", "add", "dave@localhost", NULL), ==, 2);
  g_assert_nonnull (strstr (out4, "no password"));
  g_assert_cmpint (mynactl_stdin (&f->d, "\n", &out5, "user", "passwd", "carol@localhost",
                                  NULL), ==, 2);
  g_autofree char *huge = g_strnfill (5000, 'p');
  g_assert_cmpint (mynactl_stdin (&f->d, huge, &out6, "user", "passwd", "carol@localhost",
                                  NULL), ==, 2);
  g_assert_nonnull (strstr (out6, "longer"));
  g_autoptr(Client) c2 = client_login (&f->d, "carol", "carol secret", "r2");
  g_assert_nonnull (c2);
}

/* Reads the terminal's master side until @needle shows (bounded). */
static gboolean
pty_expect (int master, GString *seen, const char *needle)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;
  char buf[512];

  while (strstr (seen->str, needle) == NULL)
    {
      struct pollfd p = { .fd = master, .events = POLLIN };
      int left = (int) ((deadline - g_get_monotonic_time ()) / 1000);
      if (left <= 0 || poll (&p, 1, left) <= 0)
        return FALSE;
      ssize_t n = read (master, buf, sizeof buf);
      if (n <= 0)
        return strstr (seen->str, needle) != NULL;   /* EIO: the child is gone */
      g_string_append_len (seen, buf, n);
    }
  return TRUE;
}

/* mynactl on a terminal: @first and @second typed at its two prompts;
 * returns its exit status, what the terminal showed in *@shown. */
static int
mynactl_on_tty (Fixture *f, const char *jid, const char *first, const char *second,
                char **shown)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *tool = build_path ("core/mynactl");
  g_autoptr(GString) seen = g_string_new (NULL);
  int master = posix_openpt (O_RDWR | O_NOCTTY | O_CLOEXEC);

  g_assert_cmpint (master, >=, 0);
  g_assert_cmpint (grantpt (master), ==, 0);
  g_assert_cmpint (unlockpt (master), ==, 0);
  int slave = open (ptsname (master), O_RDWR | O_NOCTTY | O_CLOEXEC);
  g_assert_cmpint (slave, >=, 0);
  g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_subprocess_launcher_take_stdin_fd (l, slave);
  g_subprocess_launcher_take_stdout_fd (l, dup (slave));
  g_subprocess_launcher_take_stderr_fd (l, dup (slave));
  g_autoptr(GSubprocess) p = g_subprocess_launcher_spawn (l, &error, tool, "-c", f->d.conf_path,
                                                          "user", "add", jid, NULL);
  g_assert_no_error (error);
  g_assert_true (pty_expect (master, seen, "Password for"));
  g_assert_cmpint (write (master, first, strlen (first)), ==, (gssize) strlen (first));
  g_assert_true (pty_expect (master, seen, "Again"));
  g_assert_cmpint (write (master, second, strlen (second)), ==, (gssize) strlen (second));
  pty_expect (master, seen, "\n\n\n");        /* all it says, up to its exit */
  g_subprocess_wait (p, NULL, &error);
  g_assert_no_error (error);
  close (master);
  *shown = g_string_free (g_steal_pointer (&seen), FALSE);
  return g_subprocess_get_exit_status (p);
}

/* On a terminal mynactl asks twice, without echo, and compares. */
static void
test_mynactl_password_prompt (Fixture *f, gconstpointer unused)
{
  g_autofree char *shown = NULL, *shown2 = NULL, *list = NULL;

  g_assert_cmpint (mynactl_on_tty (f, "erin@localhost", "tty-secret\n", "tty-other\n",
                                   &shown), ==, 2);
  g_test_message ("terminal: %s", shown);
  g_assert_nonnull (strstr (shown, "do not match"));
  g_assert_null (strstr (shown, "tty-secret"));
  g_assert_cmpint (mynactl (&f->d, &list, "user", "list", NULL), ==, 0);
  g_assert_null (strstr (list, "erin@"));
  g_assert_cmpint (mynactl_on_tty (f, "erin@localhost", "tty-secret\n", "tty-secret\n",
                                   &shown2), ==, 0);
  g_test_message ("terminal: %s", shown2);
  g_assert_null (strstr (shown2, "tty-secret"));
  g_autoptr(Client) c = client_login (&f->d, "erin", "tty-secret", "r");
  g_assert_nonnull (c);
}

/* Server keepalives (XEP-0199): a silent client is pinged; one that
 * answers stays, one that does not is closed. */
static void
test_keepalive (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) good = client_login (&f->d, "alice", "wonderland", "good");
  g_autoptr(Client) dead = client_login (&f->d, "bob", "builder", "dead");

  g_assert_true (client_expect (good, "id='myna-keepalive'"));
  g_assert_nonnull (strstr (good->in->str, "<ping xmlns='urn:xmpp:ping'/>"));
  client_send (good, "<iq type='result' id='myna-keepalive' to='localhost'/>");
  g_assert_true (client_expect (dead, "id='myna-keepalive'"));
  /* bob never answers: closed after the timeout. */
  g_assert_true (client_expect (dead, "<connection-timeout"));
  g_assert_true (client_expect_closed (dead));
  g_assert_true (client_is_open (good));
}

/* The keepalive state is session data with a destroy notify of mod_ping:
 * unloading ping drops it (the core runs the destroy notify before the .so
 * closes), and the sessions live on without keepalives; ending them then
 * calls into nothing (mynad's exit status, under ASan too). */
static void
test_unload_with_sessions (Fixture *f, gconstpointer unused)
{
  g_autofree char *out = NULL, *out2 = NULL;
  g_autoptr(Client) a = client_login (&f->d, "alice", "wonderland", "a");
  g_autoptr(Client) b = client_login (&f->d, "bob", "builder", "b");

  g_assert_true (client_expect (a, "id='myna-keepalive'"));
  client_send (a, "<iq type='result' id='myna-keepalive' to='localhost'/>");
  g_assert_cmpint (mynactl (&f->d, &out, "unload", "ping", NULL), ==, 0);
  g_assert_true (mynad_wait_log (&f->d, "module ping unloaded", WAIT_MS));
  g_assert_cmpint (mynactl (&f->d, &out2, "modules", NULL), ==, 0);
  g_assert_nonnull (strstr (out2, "ping 1.1 eager (not loaded)"));
  /* Both sessions still route; then one leaves, one is left to shutdown. */
  client_send (a, "<message to='bob@localhost/b' type='chat'><body>after unload</body></message>");
  g_assert_true (client_expect (b, "after unload"));
  client_send (b, "</stream:stream>");
  g_assert_true (client_expect_closed (b));
  g_assert_true (client_is_open (a));
  g_assert_null (strstr (f->d.log->str, "CRITICAL"));
}

/* A lazy module is opened by the first stanza of its namespace, over a
 * real connection, and a hot reload keeps both the connection and the
 * module's state. */
static void
test_lazy_module_over_the_wire (Fixture *f, gconstpointer unused)
{
  g_autofree char *before = NULL, *after = NULL, *reload = NULL;
  g_autoptr(Client) a = client_login (&f->d, "alice", "wonderland", "r");
  const char *q1 = "<iq type='get' id='L1' to='localhost'><query xmlns='urn:myna:test:lazy'/></iq>";
  const char *q2 = "<iq type='get' id='L2' to='localhost'><query xmlns='urn:myna:test:lazy'/></iq>";

  g_assert_cmpint (mynactl (&f->d, &before, "modules", NULL), ==, 0);
  g_assert_nonnull (strstr (before, "lazytest 1.0 lazy (not loaded)"));
  client_send (a, q1);
  g_assert_true (client_expect (a, "<count>1</count>"));
  g_assert_cmpint (mynactl (&f->d, &after, "modules", NULL), ==, 0);
  g_assert_nonnull (strstr (after, "lazytest 1.0 lazy localhost"));
  g_assert_cmpint (mynactl (&f->d, &reload, "reload", "lazytest", NULL), ==, 0);
  client_send (a, q2);
  g_assert_true (client_expect (a, "<count>2</count>"));
}

/* Clients that leave while their password is being checked off the main
 * loop: the late result must find the session closing and do nothing. */
static void
test_leave_during_auth (Fixture *f, gconstpointer unused)
{
  for (int i = 0; i < 30; i++)
    {
      g_autoptr(Client) c = client_open_stream (&f->d);
      send_plain (c, "alice", "wonderland");
    }
  /* Checks still in flight count against the throttle until they finish
   * (right passwords are then forgiven): retry within a bound. */
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;
  g_autoptr(Client) a = NULL;
  while (a == NULL && g_get_monotonic_time () < deadline)
    a = client_login (&f->d, "alice", "wonderland", "after");
  g_assert_nonnull (a);
  g_assert_null (strstr (f->d.log->str, "CRITICAL"));
}

/* The mode of @name in the data directory, or -1 when it is absent. */
static int
data_file_mode (Mynad *d, const char *name)
{
  g_autofree char *path = g_build_filename (d->dir, name, NULL);
  GStatBuf st;

  return g_stat (path, &st) == 0 ? (int) (st.st_mode & 07777) : -1;
}

/* A data directory made 0755 beforehand (as `mkdir /var/lib/myna` does),
 * a umask of 022: what mynad creates there is still its own, and it says
 * the directory is too open. */
static void
test_data_dir_private (void)
{
  static const char *const secrets[] = {
    "myna.db", "myna.db-wal", "myna.db-shm", "certs/localhost.key", "mynad.sock",
  };
  Mynad d = { .modules = MYNAD_DEFAULT_MODULES };
  mode_t old = umask (022);

  mynad_prepare (&d, MYNAD_PLAIN_AUTH);
  g_assert_cmpint (g_chmod (d.dir, 0755), ==, 0);
  mynad_spawn (&d);
  umask (old);
  mynad_add_user (&d, "alice", "wonderland");
  for (guint i = 0; i < G_N_ELEMENTS (secrets); i++)
    {
      int mode = data_file_mode (&d, secrets[i]);

      g_test_message ("%s: %04o", secrets[i], (unsigned) mode);
      g_assert_cmpint (mode, !=, -1);
      g_assert_cmpint (mode & 077, ==, 0);
    }
  g_assert_true (mynad_wait_log (&d, "is open to other users (mode 0755)", WAIT_MS));
  g_assert_cmpint (mynad_stop (&d), ==, 0);
}

#define ADD(path, func, data) \
  g_test_add (path, Fixture, data, setup, func, teardown)

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  ADD ("/c2s/mechanisms", test_features_offer_mechanisms, NULL);
  ADD ("/c2s/plain-login-message", test_plain_login_and_message, NULL);
  ADD ("/c2s/wrong-password", test_wrong_password, NULL);
  ADD ("/c2s/malformed-sasl", test_malformed_sasl, NULL);
  /* Each malformed exchange counts as a failure (issue 10, item 8). */
  ADD ("/c2s/empty-sasl-data", test_empty_sasl_data,
       "max_failures = 1000\nmax_failures_per_address = 1000\n");
  ADD ("/c2s/scram-sha-256", test_scram_sha256, NULL);
  ADD ("/c2s/scram-bad-nonce", test_scram_bad_nonce, NULL);
  ADD ("/c2s/scram-unknown-user", test_scram_unknown_user, NULL);
  ADD ("/c2s/scram-aborts-counted", test_scram_aborts_counted, NULL);
  ADD ("/c2s/iterations-raised/mix", test_iterations_raised_mix,
       "max_failures_per_address = 100000\n");
  ADD ("/c2s/iterations-raised/plain-upgrades", test_iterations_raised_plain_upgrades, NULL);
  ADD ("/c2s/iterations-changed/plain-timing", test_iterations_changed_plain_timing,
       "max_failures = 10\n[global]\nscram_iterations = 1000000\n");
  ADD ("/c2s/iterations-raised/stable", test_iterations_raised_stable,
       "max_failures_per_address = 100000\n");
  ADD ("/c2s/plain-unknown-timing", test_plain_unknown_timing,
       "max_failures = 10\n[global]\nscram_iterations = 1000000\n");
  ADD ("/c2s/bind-conflict", test_bind_conflict_kicks_old, NULL);
  ADD ("/c2s/generated-resource", test_generated_resource, NULL);
  ADD ("/c2s/spoofed-from", test_spoofed_from, NULL);
  ADD ("/c2s/bad-stanzas", test_iq_without_id_and_bad_to, NULL);
  ADD ("/c2s/accounts", test_accounts_via_mynactl, NULL);
  ADD ("/c2s/mynactl-password-not-in-argv", test_mynactl_password_not_in_argv, NULL);
  ADD ("/c2s/mynactl-password-prompt", test_mynactl_password_prompt, NULL);
  ADD ("/c2s/lazy-module", test_lazy_module_over_the_wire, NULL);
  ADD ("/c2s/leave-during-auth", test_leave_during_auth, NULL);
  ADD ("/c2s/keepalive", test_keepalive,
       "[module:ping]\nkeepalive_interval = 1s\nkeepalive_timeout = 1s\n");
  ADD ("/c2s/unload-with-sessions", test_unload_with_sessions,
       "[module:ping]\nkeepalive_interval = 1s\nkeepalive_timeout = 1s\n");
  g_test_add_func ("/c2s/data-dir-private", test_data_dir_private);
  return g_test_run ();
}
