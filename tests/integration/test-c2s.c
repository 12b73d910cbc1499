/* test-c2s: logging in and talking over raw sockets against a real mynad —
 * SASL PLAIN and SCRAM-SHA-256 (computed with the SDK's SCRAM primitives),
 * wrong credentials, throttling, malformed SASL, resource binding and its
 * conflicts, from-stamping and spoofing, IQ routing, accounts via mynactl. */
#include "mynad-harness.h"

#include <myna/sasl.h>

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
  /* After max_failures the account is throttled, right password or not. */
  g_string_truncate (c->in, 0);
  send_plain (c, "alice", "nope2");
  g_assert_true (client_expect (c, "<not-authorized/>"));
  g_string_truncate (c->in, 0);
  send_plain (c, "alice", "wonderland");
  g_assert_true (client_expect (c, "<temporary-auth-failure/>"));
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

/* A SCRAM-SHA-256 client built from the SDK's primitives. */
static void
scram_sha256 (Fixture *f, gboolean bad_nonce)
{
  g_autoptr(Client) c = client_open_stream (&f->d);
  const char *cfirst_bare = "n=alice,r=clientnonce123";
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
  g_assert_cmpuint (iters, ==, 4096);

  const char *nonce = bad_nonce ? "r=forged" : parts[0];
  g_autofree char *without_proof = g_strdup_printf ("c=biws,%s", nonce);
  g_autofree char *auth_message = g_strdup_printf ("%s,%s,%s", cfirst_bare, sfirst, without_proof);
  g_autoptr(GBytes) salted = myna_scram_salted_password (MYNA_SCRAM_SHA256, "wonderland", salt, iters);
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
  g_assert_cmpint (mynactl (&f->d, &out2, "user", "add", "alice@localhost", "x", NULL), ==, 1);
  g_assert_nonnull (strstr (out2, "exists"));
  int rc = mynactl (&f->d, &out3, "user", "passwd", "alice@localhost", "new pass", NULL);
  g_test_message ("user passwd: %s", out3);
  g_assert_cmpint (rc, ==, 0);
  g_autoptr(Client) c = client_login (&f->d, "alice", "new pass", "r");
  g_assert_nonnull (c);
  g_assert_cmpint (mynactl (&f->d, &out4, "user", "del", "bob@localhost", NULL), ==, 0);
  g_autoptr(Client) b = client_open_stream (&f->d);
  send_plain (b, "bob", "builder");
  g_assert_true (client_expect (b, "<not-authorized/>"));
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
  ADD ("/c2s/empty-sasl-data", test_empty_sasl_data, NULL);
  ADD ("/c2s/scram-sha-256", test_scram_sha256, NULL);
  ADD ("/c2s/scram-bad-nonce", test_scram_bad_nonce, NULL);
  ADD ("/c2s/bind-conflict", test_bind_conflict_kicks_old, NULL);
  ADD ("/c2s/generated-resource", test_generated_resource, NULL);
  ADD ("/c2s/spoofed-from", test_spoofed_from, NULL);
  ADD ("/c2s/bad-stanzas", test_iq_without_id_and_bad_to, NULL);
  ADD ("/c2s/accounts", test_accounts_via_mynactl, NULL);
  ADD ("/c2s/lazy-module", test_lazy_module_over_the_wire, NULL);
  ADD ("/c2s/leave-during-auth", test_leave_during_auth, NULL);
  ADD ("/c2s/keepalive", test_keepalive,
       "[module:ping]\nkeepalive_interval = 1s\nkeepalive_timeout = 1s\n");
  ADD ("/c2s/unload-with-sessions", test_unload_with_sessions,
       "[module:ping]\nkeepalive_interval = 1s\nkeepalive_timeout = 1s\n");
  return g_test_run ();
}
