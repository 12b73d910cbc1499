/* tls.c: the server's TLS context (GnuTLS) — one credentials object
 * holding every virtual host's certificate (GnuTLS picks by SNI), a
 * self-signed development certificate made on first start for a host with
 * none configured, session tickets for resumption, and ALPN xmpp-client. */
#include "private.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <gnutls/crypto.h>
#include <glib/gstdio.h>
#include <string.h>

struct _MynaTls {
  gnutls_certificate_credentials_t creds;
  gnutls_priority_t                priority;
  gnutls_datum_t                   ticket_key;
  guint                            n_certs;
};

static gboolean
tls_fail (GError **error, int rc, const char *what)
{
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "TLS: %s: %s", what, gnutls_strerror (rc));
  return FALSE;
}

/* Written with @mode from the start: never readable by others, not even
 * for a moment, whatever the umask and the directory's mode. */
static gboolean
write_pem (const char *path, gnutls_datum_t *pem, int mode, GError **error)
{
  return g_file_set_contents_full (path, (const char *) pem->data, pem->size,
                                   G_FILE_SET_CONTENTS_CONSISTENT, mode, error);
}

/* Makes a self-signed ECDSA P-256 certificate for @host, valid ten years. */
static gboolean
tls_make_dev_cert (const char *host, const char *crt_path, const char *key_path,
                   GError **error)
{
  gnutls_x509_privkey_t key = NULL;
  gnutls_x509_crt_t crt = NULL;
  gnutls_datum_t kpem = { 0 }, cpem = { 0 };
  guchar serial[16];
  time_t now = time (NULL);
  gboolean ok = FALSE;
  int rc;

  gnutls_rnd (GNUTLS_RND_NONCE, serial, sizeof serial);
  serial[0] &= 0x7f;
  if ((rc = gnutls_x509_privkey_init (&key)) < 0
      || (rc = gnutls_x509_privkey_generate (key, GNUTLS_PK_ECDSA,
                                             GNUTLS_CURVE_TO_BITS (GNUTLS_ECC_CURVE_SECP256R1), 0)) < 0
      || (rc = gnutls_x509_crt_init (&crt)) < 0
      || (rc = gnutls_x509_crt_set_version (crt, 3)) < 0
      || (rc = gnutls_x509_crt_set_serial (crt, serial, sizeof serial)) < 0
      || (rc = gnutls_x509_crt_set_activation_time (crt, now - 3600)) < 0
      || (rc = gnutls_x509_crt_set_expiration_time (crt, now + 10 * 365 * 24 * 3600L)) < 0
      || (rc = gnutls_x509_crt_set_dn_by_oid (crt, GNUTLS_OID_X520_COMMON_NAME, 0, host,
                                              (unsigned) strlen (host))) < 0
      || (rc = gnutls_x509_crt_set_subject_alt_name (crt, GNUTLS_SAN_DNSNAME, host,
                                                     (unsigned) strlen (host),
                                                     GNUTLS_FSAN_SET)) < 0
      || (rc = gnutls_x509_crt_set_key_usage (crt, GNUTLS_KEY_DIGITAL_SIGNATURE)) < 0
      || (rc = gnutls_x509_crt_set_key_purpose_oid (crt, GNUTLS_KP_TLS_WWW_SERVER, 0)) < 0
      || (rc = gnutls_x509_crt_set_key (crt, key)) < 0
      || (rc = gnutls_x509_crt_sign2 (crt, crt, key, GNUTLS_DIG_SHA256, 0)) < 0
      || (rc = gnutls_x509_privkey_export2 (key, GNUTLS_X509_FMT_PEM, &kpem)) < 0
      || (rc = gnutls_x509_crt_export2 (crt, GNUTLS_X509_FMT_PEM, &cpem)) < 0)
    tls_fail (error, rc, "making a development certificate");
  else
    ok = write_pem (key_path, &kpem, 0600, error) && write_pem (crt_path, &cpem, 0644, error);
  gnutls_free (kpem.data);
  gnutls_free (cpem.data);
  if (crt != NULL)
    gnutls_x509_crt_deinit (crt);
  if (key != NULL)
    gnutls_x509_privkey_deinit (key);
  if (ok)
    g_message ("host %s: made a self-signed development certificate %s", host, crt_path);
  return ok;
}

/* Loads @host's configured certificate, or its development one. */
static gboolean
tls_add_host (MynaTls *tls, MynaServer *server, const char *host, GError **error)
{
  g_autofree char *group = g_strdup_printf ("host:%s", host);
  g_autofree char *crt = myna_config_get_string (server->config, group, "certificate");
  g_autofree char *key = myna_config_get_string (server->config, group, "key");
  int rc;

  if (*crt == '\0' || *key == '\0')
    {
      g_autofree char *dir = g_build_filename (server->data_dir, "certs", NULL);
      g_free (crt);
      g_free (key);
      crt = g_strdup_printf ("%s/%s.crt", dir, host);
      key = g_strdup_printf ("%s/%s.key", dir, host);
      g_mkdir_with_parents (dir, 0700);
      if (!g_file_test (crt, G_FILE_TEST_EXISTS) && !tls_make_dev_cert (host, crt, key, error))
        return FALSE;
    }
  else
    {
      g_autofree char *c = myna_config_resolve_path (server->config, crt);
      g_autofree char *k = myna_config_resolve_path (server->config, key);
      g_free (crt);
      g_free (key);
      crt = g_steal_pointer (&c);
      key = g_steal_pointer (&k);
    }
  rc = gnutls_certificate_set_x509_key_file (tls->creds, crt, key, GNUTLS_X509_FMT_PEM);
  if (rc < 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   "host %s: cannot load certificate %s / key %s: %s", host, crt, key,
                   gnutls_strerror (rc));
      return FALSE;
    }
  tls->n_certs++;
  g_info ("host %s: TLS certificate %s", host, crt);
  return TRUE;
}

MynaTls *
myna_tls_new (MynaServer *server, GError **error)
{
  g_autofree char *prio = myna_config_get_string (server->config, "global", "tls_priority");
  MynaTls *tls = g_new0 (MynaTls, 1);
  GHashTableIter it;
  gpointer key;
  const char *err_pos = NULL;
  int rc;

  gnutls_certificate_allocate_credentials (&tls->creds);
  if ((rc = gnutls_priority_init2 (&tls->priority, prio, &err_pos, 0)) < 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "tls_priority '%s': %s at '%s'", prio, gnutls_strerror (rc),
                   err_pos ? err_pos : "");
      myna_tls_free (tls);
      return NULL;
    }
  /* DHE-RSA uses the RFC 7919 2048-bit group (Mozilla intermediate's
   * ffdhe2048), also with clients that do not negotiate groups. */
  gnutls_certificate_set_known_dh_params (tls->creds, GNUTLS_SEC_PARAM_MEDIUM);
  gnutls_session_ticket_key_generate (&tls->ticket_key);
  g_hash_table_iter_init (&it, server->hosts);
  while (g_hash_table_iter_next (&it, &key, NULL))
    if (!tls_add_host (tls, server, key, error))
      {
        myna_tls_free (tls);
        return NULL;
      }
  return tls;
}

void
myna_tls_free (MynaTls *tls)
{
  if (tls == NULL)
    return;
  if (tls->priority != NULL)
    gnutls_priority_deinit (tls->priority);
  gnutls_certificate_free_credentials (tls->creds);
  if (tls->ticket_key.data != NULL)
    {
      memset (tls->ticket_key.data, 0, tls->ticket_key.size);
      gnutls_free (tls->ticket_key.data);
    }
  g_free (tls);
}

/* ---- sessions ------------------------------------------------------------- */

gnutls_session_t
myna_tls_session_new (MynaTls *tls, int fd)
{
  gnutls_session_t s = NULL;
  static const gnutls_datum_t alpn = { (unsigned char *) "xmpp-client", 11 };

  if (gnutls_init (&s, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL) < 0)
    return NULL;
  gnutls_priority_set (s, tls->priority);
  gnutls_credentials_set (s, GNUTLS_CRD_CERTIFICATE, tls->creds);
  gnutls_certificate_server_set_request (s, GNUTLS_CERT_IGNORE);
  gnutls_session_ticket_enable_server (s, &tls->ticket_key);
  gnutls_alpn_set_protocols (s, &alpn, 1, GNUTLS_ALPN_SERVER_PRECEDENCE);
  gnutls_transport_set_int (s, fd);
  gnutls_handshake_set_timeout (s, 0);
  return s;
}

GBytes *
myna_tls_channel_binding (gnutls_session_t s, const char *type)
{
  gnutls_channel_binding_t cbt;
  gnutls_datum_t cb = { 0 };

  if (s == NULL)
    return NULL;
  if (g_strcmp0 (type, "tls-exporter") == 0)
    {
      /* RFC 9266 defines tls-exporter for TLS 1.3 only. */
      if (gnutls_protocol_get_version (s) != GNUTLS_TLS1_3)
        return NULL;
      cbt = GNUTLS_CB_TLS_EXPORTER;
    }
  else if (g_strcmp0 (type, "tls-server-end-point") == 0)
    cbt = GNUTLS_CB_TLS_SERVER_END_POINT;
  else if (g_strcmp0 (type, "tls-unique") == 0)
    {
      /* RFC 5929; not defined for TLS 1.3 (RFC 9266 §3). */
      if (gnutls_protocol_get_version (s) == GNUTLS_TLS1_3)
        return NULL;
      cbt = GNUTLS_CB_TLS_UNIQUE;
    }
  else
    return NULL;
  if (gnutls_session_channel_binding (s, cbt, &cb) < 0)
    return NULL;
  GBytes *b = g_bytes_new (cb.data, cb.size);
  gnutls_free (cb.data);
  return b;
}
