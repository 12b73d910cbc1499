/* verify.h: XEP-0115 §5 verification strings and their hashes, pure
 * functions over a disco#info <query/> (no server state), so that a unit
 * test compiles them alone. */
#pragma once

#include <myna/stanza.h>

G_BEGIN_DECLS

#define CAPS_NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define CAPS_NS_DATA       "jabber:x:data"

/* The verification string of the disco#info @query (XEP-0115 §5.1):
 * identities sorted by category/type/xml:lang/name, features sorted,
 * then the extended forms (XEP-0128) sorted by FORM_TYPE with their
 * fields sorted by var and values sorted.  A form without a hidden
 * FORM_TYPE is left out (§5.4 3.5); duplicate identities or features, two
 * forms of one FORM_TYPE, or a FORM_TYPE of several values make the
 * answer unusable: NULL with @why set (§5.4 3.3, 3.4, 3.6).
 * Returns: (transfer full) (nullable) */
char  *caps_verification_string (const MynaStanza *query, const char **why);

/* The XEP-0115 ver of @s under the hash function named @hash (IANA Hash
 * Function Textual Names: "sha-1", "sha-256", …), Base64; NULL when the
 * hash is not one this build knows.  Returns: (transfer full) (nullable) */
char  *caps_hash_ver (const char *hash, const char *s);

/* Whether @hash names a hash function caps_hash_ver computes. */
gboolean caps_hash_known (const char *hash);

/* The features of @query, sorted, duplicates once.
 * Returns: (transfer full) a NULL-terminated array */
char **caps_query_features (const MynaStanza *query);

G_END_DECLS
