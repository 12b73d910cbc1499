/* test-tls: which TLS versions, cipher suites and groups a real mynad
 * negotiates, on its STARTTLS and its direct TLS listener, by default
 * (Mozilla's "intermediate" profile, v5.7: TLS 1.2 and 1.3, AEAD suites
 * with ECDHE or DHE only, groups X25519, P-256, P-384, ffdhe2048 for
 * DHE; core/private.h says why TLS 1.3 may use ffdhe2048 as well).  A GnuTLS client offers one suite (or one group) at a time: what
 * is in the profile must succeed, everything else (CBC, CCM, SHA-1 MACs,
 * RSA key exchange, TLS 1.1, other groups) must fail.  localhost has the
 * ECDSA development certificate; rsa.localhost an RSA one made here, so
 * the RSA suites can be offered as well. */
#include "mynad-harness.h"

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <sys/time.h>

typedef struct {
  Mynad    d;
  guint16  tls_port;
  char    *cert_dir;
} Fixture;

/* Writes a self-signed RSA certificate for @host into @dir. */
static void
make_rsa_cert (const char *dir, const char *host, char **crt_path, char **key_path)
{
  gnutls_x509_privkey_t key;
  gnutls_x509_crt_t crt;
  gnutls_datum_t kpem = { 0 }, cpem = { 0 };
  time_t now = time (NULL);
  guchar serial[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (gnutls_x509_privkey_init (&key), ==, 0);
  g_assert_cmpint (gnutls_x509_privkey_generate (key, GNUTLS_PK_RSA, 2048, 0), ==, 0);
  g_assert_cmpint (gnutls_x509_crt_init (&crt), ==, 0);
  gnutls_x509_crt_set_version (crt, 3);
  gnutls_x509_crt_set_serial (crt, serial, sizeof serial);
  gnutls_x509_crt_set_activation_time (crt, now - 3600);
  gnutls_x509_crt_set_expiration_time (crt, now + 24 * 3600);
  gnutls_x509_crt_set_dn_by_oid (crt, GNUTLS_OID_X520_COMMON_NAME, 0, host, strlen (host));
  gnutls_x509_crt_set_subject_alt_name (crt, GNUTLS_SAN_DNSNAME, host, strlen (host),
                                        GNUTLS_FSAN_SET);
  gnutls_x509_crt_set_key_usage (crt, GNUTLS_KEY_DIGITAL_SIGNATURE | GNUTLS_KEY_KEY_ENCIPHERMENT);
  gnutls_x509_crt_set_key (crt, key);
  g_assert_cmpint (gnutls_x509_crt_sign2 (crt, crt, key, GNUTLS_DIG_SHA256, 0), ==, 0);
  g_assert_cmpint (gnutls_x509_privkey_export2 (key, GNUTLS_X509_FMT_PEM, &kpem), ==, 0);
  g_assert_cmpint (gnutls_x509_crt_export2 (crt, GNUTLS_X509_FMT_PEM, &cpem), ==, 0);
  *crt_path = g_build_filename (dir, "rsa.crt", NULL);
  *key_path = g_build_filename (dir, "rsa.key", NULL);
  g_file_set_contents (*crt_path, (const char *) cpem.data, cpem.size, &error);
  g_assert_no_error (error);
  g_file_set_contents (*key_path, (const char *) kpem.data, kpem.size, &error);
  g_assert_no_error (error);
  gnutls_free (kpem.data);
  gnutls_free (cpem.data);
  gnutls_x509_crt_deinit (crt);
  gnutls_x509_privkey_deinit (key);
}

static void
setup (Fixture *f, gconstpointer extra)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *crt = NULL, *key = NULL;

  f->cert_dir = g_dir_make_tmp ("myna-tls-XXXXXX", &error);
  g_assert_no_error (error);
  make_rsa_cert (f->cert_dir, "rsa.localhost", &crt, &key);
  f->tls_port = free_port ();
  g_autofree char *conf = g_strdup_printf ("%s\n"
                                           "[listener:direct]\n"
                                           "kind = c2s_tls\n"
                                           "address = 127.0.0.1\n"
                                           "port = %u\n"
                                           "[host:rsa.localhost]\n"
                                           "certificate = %s\n"
                                           "key = %s\n",
                                           extra != NULL ? (const char *) extra : "",
                                           f->tls_port, crt, key);
  mynad_start (&f->d, conf);
}

static void
teardown (Fixture *f, gconstpointer unused)
{
  g_assert_cmpint (mynad_stop (&f->d), ==, 0);
  mynad_rm_rf (f->cert_dir);
  g_free (f->cert_dir);
}

/* ---- a GnuTLS client ------------------------------------------------------ */

static int
connect_port (guint16 port)
{
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons (port) };
  struct timeval tv = { .tv_sec = WAIT_MS / 1000 };
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  inet_pton (AF_INET, "127.0.0.1", &sa.sin_addr);
  g_assert_cmpint (connect (fd, (struct sockaddr *) &sa, sizeof sa), ==, 0);
  /* The handshake below blocks: bounded by these and its own timeout. */
  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

/* Plain XMPP up to <proceed/> on the STARTTLS listener. */
static void
starttls (Fixture *f, int fd, const char *host)
{
  Client c = { .fd = fd, .in = g_string_new (NULL) };
  g_autofree char *open = g_strdup_printf ("<?xml version='1.0'?><stream:stream to='%s' "
                                           "xmlns='jabber:client' xmlns:stream="
                                           "'http://etherx.jabber.org/streams' version='1.0'>",
                                           host);

  client_send (&c, open);
  g_assert_true (client_expect_features (&c));
  g_assert_nonnull (strstr (c.in->str, "<starttls"));
  client_send (&c, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
  g_assert_true (client_expect (&c, "<proceed"));
  g_string_free (c.in, TRUE);
}

/* Handshakes with the client priority @prio; returns the suite name, or
 * NULL when the handshake failed. */
static char *
handshake (Fixture *f, gboolean direct, const char *host, const char *prio)
{
  gnutls_certificate_credentials_t creds;
  gnutls_session_t s;
  const char *err_pos = NULL;
  char *suite = NULL;
  int fd = connect_port (direct ? f->tls_port : f->d.port);
  int rc;

  if (!direct)
    starttls (f, fd, host);
  g_assert_cmpint (gnutls_certificate_allocate_credentials (&creds), ==, 0);
  g_assert_cmpint (gnutls_init (&s, GNUTLS_CLIENT), ==, 0);
  rc = gnutls_priority_set_direct (s, prio, &err_pos);
  if (rc < 0)
    g_error ("client priority %s: %s at %s", prio, gnutls_strerror (rc), err_pos);
  gnutls_credentials_set (s, GNUTLS_CRD_CERTIFICATE, creds);
  gnutls_server_name_set (s, GNUTLS_NAME_DNS, host, strlen (host));
  gnutls_transport_set_int (s, fd);
  gnutls_handshake_set_timeout (s, WAIT_MS);
  do
    rc = gnutls_handshake (s);
  while (rc < 0 && !gnutls_error_is_fatal (rc));
  if (rc == 0)
    {
      const char *kx = gnutls_kx_get_name (gnutls_kx_get (s));
      const char *group = gnutls_group_get_name (gnutls_group_get (s));
      suite = g_strdup_printf ("%s %s-%s-%s %s",
                               gnutls_protocol_get_name (gnutls_protocol_get_version (s)),
                               kx != NULL ? kx : "-",
                               gnutls_cipher_get_name (gnutls_cipher_get (s)),
                               gnutls_mac_get_name (gnutls_mac_get (s)),
                               group != NULL ? group : "-");
      gnutls_bye (s, GNUTLS_SHUT_WR);
    }
  g_test_message ("%s %s %s: %s", direct ? "direct" : "starttls", host, prio,
                  suite != NULL ? suite : gnutls_strerror (rc));
  gnutls_deinit (s);
  gnutls_certificate_free_credentials (creds);
  close (fd);
  return suite;
}

/* ---- what is offered ------------------------------------------------------ */

#define V12 "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:-MAC-ALL:-KX-ALL:"
#define V13 "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:-GROUP-ALL:"

typedef struct {
  const char *prio;
  gboolean    rsa;     /* needs the RSA certificate */
} Offer;

/* Mozilla intermediate: every one of these is negotiated. */
static const Offer accepted[] = {
  { V13 "+AES-128-GCM:+GROUP-X25519", FALSE },
  { V13 "+AES-256-GCM:+GROUP-X25519", FALSE },
  { V13 "+CHACHA20-POLY1305:+GROUP-X25519", FALSE },
  { V13 "+AES-128-GCM:+GROUP-SECP256R1", FALSE },
  { V13 "+AES-128-GCM:+GROUP-SECP384R1", FALSE },
  { V12 "+AES-128-GCM:+AEAD:+ECDHE-ECDSA", FALSE },
  { V12 "+AES-256-GCM:+AEAD:+ECDHE-ECDSA", FALSE },
  { V12 "+CHACHA20-POLY1305:+AEAD:+ECDHE-ECDSA", FALSE },
  { V12 "+AES-128-GCM:+AEAD:+ECDHE-RSA", TRUE },
  { V12 "+AES-256-GCM:+AEAD:+ECDHE-RSA", TRUE },
  { V12 "+CHACHA20-POLY1305:+AEAD:+ECDHE-RSA", TRUE },
  { V12 "+AES-128-GCM:+AEAD:+DHE-RSA", TRUE },
  { V12 "+AES-256-GCM:+AEAD:+DHE-RSA", TRUE },
  /* DHE with a client that does not negotiate groups (RFC 7919): the
   * server's ffdhe2048 parameters */
  { V12 "+AES-128-GCM:+AEAD:+DHE-RSA:-GROUP-ALL:+GROUP-SECP256R1", TRUE },
  { V12 "+AES-128-GCM:+AEAD:+ECDHE-ECDSA:-GROUP-ALL:+GROUP-X25519", FALSE },
  { V12 "+AES-128-GCM:+AEAD:+ECDHE-ECDSA:-GROUP-ALL:+GROUP-SECP384R1", FALSE },
};

/* Outside it: every one of these fails. */
static const Offer refused[] = {
  /* CBC with SHA-1 and SHA-256 MACs */
  { V12 "+AES-128-CBC:+SHA1:+ECDHE-ECDSA", FALSE },
  { V12 "+AES-256-CBC:+SHA1:+ECDHE-ECDSA", FALSE },
  { V12 "+AES-128-CBC:+SHA256:+ECDHE-ECDSA", FALSE },
  { V12 "+AES-128-CBC:+SHA1:+ECDHE-RSA", TRUE },
  { V12 "+AES-256-CBC:+SHA1:+DHE-RSA", TRUE },
  /* CCM */
  { V12 "+AES-128-CCM:+AEAD:+ECDHE-ECDSA", FALSE },
  { V12 "+AES-256-CCM:+AEAD:+ECDHE-ECDSA", FALSE },
  { V12 "+AES-128-CCM:+AEAD:+DHE-RSA", TRUE },
  { V13 "+AES-128-CCM:+GROUP-X25519", FALSE },
  /* RSA key exchange (no forward secrecy) */
  { V12 "+AES-128-GCM:+AEAD:+RSA", TRUE },
  { V12 "+AES-256-GCM:+AEAD:+RSA", TRUE },
  { V12 "+AES-128-CBC:+SHA1:+RSA", TRUE },
  /* groups outside the profile */
  { V13 "+AES-128-GCM:+GROUP-SECP521R1", FALSE },
  { V13 "+AES-128-GCM:+GROUP-X448", FALSE },
  { V13 "+AES-128-GCM:+GROUP-FFDHE3072", FALSE },
  { V12 "+AES-128-GCM:+AEAD:+ECDHE-ECDSA:-GROUP-ALL:+GROUP-SECP521R1", FALSE },
  /* older versions */
  { "NORMAL:-VERS-ALL:+VERS-TLS1.1", FALSE },
  { "NORMAL:-VERS-ALL:+VERS-TLS1.0", FALSE },
};

/* Offers each suite in turn; every mismatch is listed before failing. */
static void
check_offers (Fixture *f, gboolean direct)
{
  g_autoptr(GString) wrong = g_string_new (NULL);

  for (guint i = 0; i < G_N_ELEMENTS (accepted); i++)
    {
      const char *host = accepted[i].rsa ? "rsa.localhost" : "localhost";
      g_autofree char *suite = handshake (f, direct, host, accepted[i].prio);
      if (suite == NULL)
        g_string_append_printf (wrong, "\n  refused: %s", accepted[i].prio);
    }
  for (guint i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      const char *host = refused[i].rsa ? "rsa.localhost" : "localhost";
      g_autofree char *suite = handshake (f, direct, host, refused[i].prio);
      if (suite != NULL)
        g_string_append_printf (wrong, "\n  negotiated %s: %s", suite, refused[i].prio);
    }
  if (wrong->len > 0)
    g_error ("%s listener, outside Mozilla intermediate:%s", direct ? "direct TLS" : "STARTTLS",
             wrong->str);
}

static void
test_starttls_profile (Fixture *f, gconstpointer unused)
{
  check_offers (f, FALSE);
}

static void
test_direct_profile (Fixture *f, gconstpointer unused)
{
  check_offers (f, TRUE);
}

/* tls_priority still overrides the profile. */
static void
test_priority_configurable (Fixture *f, gconstpointer unused)
{
  g_autofree char *cbc = handshake (f, TRUE, "localhost", V12 "+AES-128-CBC:+SHA1:+ECDHE-ECDSA");
  g_autofree char *gcm = handshake (f, TRUE, "localhost", V12 "+AES-128-GCM:+AEAD:+ECDHE-ECDSA");

  g_assert_nonnull (cbc);
  g_assert_null (gcm);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  gnutls_global_init ();
  g_test_add ("/tls/starttls/intermediate", Fixture, NULL, setup, test_starttls_profile,
              teardown);
  g_test_add ("/tls/direct/intermediate", Fixture, NULL, setup, test_direct_profile, teardown);
  g_test_add ("/tls/priority/configurable", Fixture,
              "tls_priority = NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-CBC:"
              "-MAC-ALL:+SHA1:-KX-ALL:+ECDHE-ECDSA",
              setup, test_priority_configurable, teardown);
  int rc = g_test_run ();
  gnutls_global_deinit ();
  return rc;
}
