/* stanza.h: a small refcounted XML element tree for XMPP stanzas.
 *
 * A MynaStanza is one XML element: a name, a namespace, attributes and an
 * ordered list of children, each either an element or a text node.  It carries
 * no server state, so a client library can reuse it.  Text is stored
 * unescaped; the serializer escapes it.
 *
 * Ownership: constructors return a full reference; a parent holds a reference
 * to each child; accessors return borrowed pointers valid while the parent
 * lives.  Functions ending in _take steal the reference they are given. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define MYNA_NS_CLIENT    "jabber:client"
#define MYNA_NS_SERVER    "jabber:server"
#define MYNA_NS_STREAMS   "http://etherx.jabber.org/streams"
#define MYNA_NS_STANZAS   "urn:ietf:params:xml:ns:xmpp-stanzas"
#define MYNA_NS_STREAM_ERRORS "urn:ietf:params:xml:ns:xmpp-streams"
#define MYNA_NS_XML       "http://www.w3.org/XML/1998/namespace"

typedef struct _MynaStanza MynaStanza;

/* Stanza error types of RFC 6120 §8.3.2. */
typedef enum {
  MYNA_ERROR_TYPE_AUTH,
  MYNA_ERROR_TYPE_CANCEL,
  MYNA_ERROR_TYPE_CONTINUE,
  MYNA_ERROR_TYPE_MODIFY,
  MYNA_ERROR_TYPE_WAIT,
} MynaErrorType;

/* Creates an element.  @ns may be NULL (no namespace: inherits on output).
 * Returns: (transfer full) */
MynaStanza *myna_stanza_new (const char *name, const char *ns);
/* Creates a text node.  Returns: (transfer full) */
MynaStanza *myna_stanza_new_text (const char *text, gssize len);

MynaStanza *myna_stanza_ref (MynaStanza *stanza);
void        myna_stanza_unref (MynaStanza *stanza);

/* Deep copy.  Returns: (transfer full) */
MynaStanza *myna_stanza_copy (const MynaStanza *stanza);

gboolean    myna_stanza_is_text (const MynaStanza *node);
/* Element name, or NULL for a text node. */
const char *myna_stanza_get_name (const MynaStanza *stanza);
/* Namespace URI, or NULL. */
const char *myna_stanza_get_ns (const MynaStanza *stanza);

/* Unqualified attributes (no namespace).  Returns NULL when absent. */
const char *myna_stanza_get_attr (const MynaStanza *stanza, const char *name);
/* Sets or, with @value NULL, removes an unqualified attribute. */
void        myna_stanza_set_attr (MynaStanza *stanza, const char *name,
                                  const char *value);
/* Namespaced attributes; @ns NULL is the same as the unqualified calls.
 * xml:lang is (MYNA_NS_XML, "lang"). */
const char *myna_stanza_get_attr_ns (const MynaStanza *stanza, const char *ns,
                                     const char *name);
void        myna_stanza_set_attr_ns (MynaStanza *stanza, const char *ns,
                                     const char *name, const char *value);
guint       myna_stanza_get_n_attrs (const MynaStanza *stanza);
/* Attribute @i: borrowed namespace (may be NULL), name and value. */
void        myna_stanza_get_attr_nth (const MynaStanza *stanza, guint i,
                                      const char **ns, const char **name,
                                      const char **value);

/* Shorthands for the common stanza attributes. */
const char *myna_stanza_get_id (const MynaStanza *stanza);
const char *myna_stanza_get_type (const MynaStanza *stanza);
const char *myna_stanza_get_from (const MynaStanza *stanza);
const char *myna_stanza_get_to (const MynaStanza *stanza);

/* Children, elements and text nodes alike, in document order. */
guint       myna_stanza_get_n_children (const MynaStanza *stanza);
MynaStanza *myna_stanza_get_child_nth (const MynaStanza *stanza, guint i);
/* First child element matching @name and @ns; either may be NULL for any.
 * Returns: (transfer none) (nullable) */
MynaStanza *myna_stanza_get_child (const MynaStanza *stanza, const char *name,
                                   const char *ns);
/* First child element of any name.  Returns: (transfer none) (nullable) */
MynaStanza *myna_stanza_first_element (const MynaStanza *stanza);
/* Concatenated text of the direct text children ("" when none); for a text
 * node, its text.  Returns: (transfer none) */
const char *myna_stanza_get_text (const MynaStanza *stanza);
/* Text of the first child element @name (any namespace), or NULL. */
const char *myna_stanza_get_child_text (const MynaStanza *stanza,
                                        const char *name);

/* Appends a new child element; @ns NULL means the parent's namespace.
 * Returns: (transfer none) the child, owned by @parent. */
MynaStanza *myna_stanza_add_child (MynaStanza *parent, const char *name,
                                   const char *ns);
/* Appends <name>text</name> in the parent's namespace.
 * Returns: (transfer none) */
MynaStanza *myna_stanza_add_text_child (MynaStanza *parent, const char *name,
                                        const char *text);
/* Appends text to @parent, merging with a trailing text node. */
void        myna_stanza_append_text (MynaStanza *parent, const char *text,
                                     gssize len);
/* Appends @child, stealing the reference. */
void        myna_stanza_append_take (MynaStanza *parent, MynaStanza *child);
/* Appends @child, taking a new reference. */
void        myna_stanza_append (MynaStanza *parent, MynaStanza *child);
/* Removes every child element matching @name/@ns (NULL for any).
 * Returns how many were removed. */
guint       myna_stanza_remove_children (MynaStanza *parent, const char *name,
                                         const char *ns);

/* Serialises @stanza to @out.  @parent_ns is the namespace in scope
 * (for example "jabber:client" inside a client stream): an element in that
 * namespace is written without xmlns.  Prefixed attributes get generated
 * prefix declarations; xml:lang is written as xml:lang. */
void        myna_stanza_serialize (const MynaStanza *stanza, const char *parent_ns,
                                   GString *out);
/* Serialises with @stanza's own namespace declared.  Returns: (transfer full) */
char       *myna_stanza_to_string (const MynaStanza *stanza);

/* Writes @text to @out with &, <, >, ' and " escaped (for text and
 * attribute values alike). */
void        myna_xml_escape_append (GString *out, const char *text, gssize len);

/* <iq type='result'/> answering @iq: same id, to and from swapped.
 * Returns: (transfer full) */
MynaStanza *myna_stanza_new_iq_result (const MynaStanza *iq);
/* The error reply to @stanza (RFC 6120 §8.3): a copy of its name, id,
 * swapped to/from, type='error' and an <error type=…><condition/></error>
 * child (with <text/> when @text is not NULL).  The original payload is not
 * included.  Returns: (transfer full) */
MynaStanza *myna_stanza_new_error (const MynaStanza *stanza, MynaErrorType type,
                                   const char *condition, const char *text);
const char *myna_error_type_to_string (MynaErrorType type);
/* Appends a XEP-0203 <delay xmlns='urn:xmpp:delay' from=@from
 * stamp=…/> to @stanza, for a stanza delivered later than it was sent
 * (offline storage, archives, room history): @stamp is when it was
 * received, NULL for now, written in UTC as XEP-0082 says; @from
 * (nullable) is the entity that delayed it; @reason (nullable) its text.
 * Returns: (transfer none) the <delay/> element */
MynaStanza *myna_stanza_add_delay (MynaStanza *stanza, const char *from,
                                   GDateTime *stamp, const char *reason);

/* ---- Concise stanzas ------------------------------------------------------
 * One expression for a typical stanza:
 *
 *   g_autoptr(MynaStanza) m = myna_stanza_build (
 *       "<message to='%s' type='chat'><body>%s</body></message>", to, text);
 *
 * @format is an XML template in printf style; every argument is escaped for
 * XML first (g_markup_vprintf_escaped: &, <, >, ' and " become entities), so
 * a hostile string stays text or an attribute value.  The result is parsed
 * into a stanza whose root is in jabber:client unless the template says
 * otherwise (xmlns='…').  A template that is not one well-formed element is
 * a bug: NULL and a critical.  An argument XML cannot carry (control
 * characters, bad UTF-8): NULL and a warning.
 * Returns: (transfer full) (nullable) */
MynaStanza *myna_stanza_build (const char *format, ...) G_GNUC_PRINTF (1, 2);
/* The <iq type='result'/> answering @iq (id kept, to and from swapped),
 * with the elements of @payload_format (built as by myna_stanza_build(),
 * zero or more elements, jabber:client unless they declare a namespace) as
 * its children; @payload_format NULL for an empty result.  NULL and a
 * critical on a malformed payload template.
 * Returns: (transfer full) (nullable) */
MynaStanza *myna_stanza_build_result (const MynaStanza *iq,
                                      const char *payload_format, ...) G_GNUC_PRINTF (2, 3);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MynaStanza, myna_stanza_unref)

G_END_DECLS
