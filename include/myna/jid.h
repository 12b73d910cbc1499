/* jid.h: XMPP addresses (RFC 7622).
 *
 * A MynaJid is an immutable, refcounted, normalised address
 * localpart@domainpart/resourcepart.  Parsing validates and normalises:
 * the localpart by the UsernameCaseMapped profile of PRECIS (case-folded,
 * NFC, no prohibited characters: " & ' / : < > @ or spaces), the domainpart
 * lower-cased, NFC, IDNA2008 U-labels via libidn2 (a trailing dot removed,
 * IP literals accepted), the resourcepart by the OpaqueString profile (NFC,
 * case kept).  Each part is 1..1023 bytes.  Free of server state. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define MYNA_JID_ERROR (myna_jid_error_quark ())
GQuark myna_jid_error_quark (void);

typedef enum {
  MYNA_JID_ERROR_FAILED,
  MYNA_JID_ERROR_EMPTY,          /* empty address or empty part */
  MYNA_JID_ERROR_TOO_LONG,       /* a part over 1023 bytes */
  MYNA_JID_ERROR_BAD_LOCAL,      /* localpart fails its profile */
  MYNA_JID_ERROR_BAD_DOMAIN,     /* domainpart is not a valid domain */
  MYNA_JID_ERROR_BAD_RESOURCE,   /* resourcepart fails its profile */
  MYNA_JID_ERROR_BAD_UTF8,
} MynaJidError;

typedef struct _MynaJid MynaJid;

/* Parses and normalises @str.  Returns: (transfer full) (nullable) */
MynaJid    *myna_jid_parse (const char *str, GError **error);
/* Builds from parts (@local and @resource may be NULL) and normalises.
 * Returns: (transfer full) (nullable) */
MynaJid    *myna_jid_new (const char *local, const char *domain,
                          const char *resource, GError **error);

MynaJid    *myna_jid_ref (MynaJid *jid);
void        myna_jid_unref (MynaJid *jid);

/* Parts, normalised; local and resource are NULL when absent. */
const char *myna_jid_get_local (const MynaJid *jid);
const char *myna_jid_get_domain (const MynaJid *jid);
const char *myna_jid_get_resource (const MynaJid *jid);

/* The full normalised form.  Returns: (transfer none) */
const char *myna_jid_to_string (const MynaJid *jid);
/* The bare form local@domain (or domain).  Returns: (transfer none) */
const char *myna_jid_bare_string (const MynaJid *jid);

gboolean    myna_jid_is_bare (const MynaJid *jid);
/* The bare JID (the same object, with a new ref, when already bare).
 * Returns: (transfer full) */
MynaJid    *myna_jid_get_bare (MynaJid *jid);
/* The JID with @resource replaced.  Returns: (transfer full) (nullable) */
MynaJid    *myna_jid_with_resource (const MynaJid *jid, const char *resource,
                                    GError **error);

/* GHashTable-compatible comparisons of the full form. */
gboolean    myna_jid_equal (gconstpointer a, gconstpointer b);
guint       myna_jid_hash (gconstpointer jid);
gboolean    myna_jid_bare_equal (const MynaJid *a, const MynaJid *b);

/* Normalises one part alone.  Returns: (transfer full) (nullable) */
char       *myna_jid_prep_local (const char *local, GError **error);
char       *myna_jid_prep_domain (const char *domain, GError **error);
char       *myna_jid_prep_resource (const char *resource, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MynaJid, myna_jid_unref)

G_END_DECLS
