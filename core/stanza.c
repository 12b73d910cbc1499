/* stanza.c: the MynaStanza element tree (include/myna/stanza.h): building,
 * querying and editing stanzas, and writing them out as XML.
 *
 * Layout.  Every node starts with a small MynaStanza head (reference count
 * and kind); an Element or a Text extends it.  A text node keeps its bytes
 * inline, so it is one allocation.  An element is 56 bytes plus its
 * attribute and child arrays, whose capacity follows from their length
 * (see capacity_for()), so no capacity fields are stored.
 *
 * Names and namespaces.  Element names, attribute names and namespaces
 * repeat constantly, so a string that is already in GLib's intern table is
 * shared rather than copied.  Nothing here ever adds to that table: it is
 * never freed, and names arriving from the network would grow it without
 * bound.  The well-known XMPP names are interned once (known_names); code
 * may intern more with g_intern_static_string().  Any other name is copied
 * into the tail of the element's own allocation (or of the attribute's
 * value block), so freeing a node never has to know which case it was.
 * Attribute values and text are always copied.
 *
 * Reference counts are plain integers: stanzas live on one thread (the
 * main loop) at a time. */
#include <myna/stanza.h>
#include <myna/xmlstream.h>
#include "stanza-build.h"

#include <string.h>

enum {
  NODE_ELEMENT,
  NODE_TEXT,
};

struct _MynaStanza {
  guint32 ref_count;
  guint8 kind;
};

typedef struct {
  const char *ns;       /* NULL for an unqualified attribute */
  const char *name;
  char *value;          /* start of the attribute's block (see attr_fill) */
} Attr;

typedef struct {
  MynaStanza head;
  guint32 n_children;
  guint32 n_attrs;
  const char *name;
  const char *ns;       /* NULL: inherits on output; "": no namespace */
  Attr *attrs;
  MynaStanza **children;
  char *text_cache;     /* get_text() of several text children, or NULL */
} Element;

typedef struct {
  MynaStanza head;
  gsize len;
  char text[];
} Text;

#define AS_ELEMENT(node) ((Element *) (node))
#define AS_TEXT(node) ((Text *) (node))
#define IS_ELEMENT(node) ((node)->kind == NODE_ELEMENT)

/* Interned once, so that stanzas share these strings instead of copying
 * them.  Only affects memory use, never behaviour. */
static const char *const known_names[] = {
  /* namespaces */
  MYNA_NS_CLIENT, MYNA_NS_SERVER, MYNA_NS_STREAMS, MYNA_NS_STANZAS,
  MYNA_NS_STREAM_ERRORS, MYNA_NS_XML,
  "urn:ietf:params:xml:ns:xmpp-tls", "urn:ietf:params:xml:ns:xmpp-sasl",
  "urn:ietf:params:xml:ns:xmpp-bind", "urn:ietf:params:xml:ns:xmpp-session",
  "jabber:server:dialback", "jabber:iq:roster", "jabber:iq:private",
  "jabber:iq:version", "jabber:iq:last", "jabber:iq:register",
  "jabber:x:data", "jabber:x:conference", "vcard-temp", "vcard-temp:x:update",
  "http://jabber.org/protocol/caps", "http://jabber.org/protocol/disco#info",
  "http://jabber.org/protocol/disco#items", "http://jabber.org/protocol/muc",
  "http://jabber.org/protocol/muc#user",
  "http://jabber.org/protocol/chatstates",
  "http://jabber.org/protocol/pubsub",
  "http://jabber.org/protocol/pubsub#event",
  "http://jabber.org/features/iq-register", "urn:xmpp:ping", "urn:xmpp:time",
  "urn:xmpp:delay", "urn:xmpp:receipts", "urn:xmpp:sm:3", "urn:xmpp:csi:0",
  "urn:xmpp:carbons:2", "urn:xmpp:forward:0", "urn:xmpp:mam:2",
  "urn:xmpp:sid:0",
  "urn:xmpp:hints", "urn:xmpp:chat-markers:0", "urn:xmpp:blocking",
  /* elements */
  "stream", "features", "message", "presence", "iq", "body", "subject",
  "thread", "error", "text", "show", "status", "priority", "query", "item",
  "x", "c", "delay", "starttls", "proceed", "auth", "response", "challenge",
  "success", "failure", "mechanisms", "mechanism", "bind", "session",
  "resource", "jid", "enable", "enabled", "resume", "resumed", "r", "a",
  "active", "inactive", "composing", "paused", "gone", "received", "request",
  "ping", "forwarded", "result", "sent", "private", "store", "no-store",
  "origin-id", "stanza-id", "markable", "displayed", "group", "identity",
  "feature", "ver", "required", "optional",
  /* stanza and stream error conditions */
  "bad-request", "conflict", "feature-not-implemented", "forbidden",
  "internal-server-error", "item-not-found", "jid-malformed",
  "not-acceptable", "not-allowed", "not-authorized", "policy-violation",
  "recipient-unavailable", "remote-server-not-found", "remote-server-timeout",
  "resource-constraint", "service-unavailable", "subscription-required",
  "undefined-condition", "unexpected-request", "bad-format",
  "host-unknown", "invalid-namespace", "not-well-formed", "restricted-xml",
  "see-other-host", "system-shutdown", "unsupported-version",
  "connection-timeout", "invalid-from", "improper-addressing",
  /* attributes and frequent values */
  "to", "from", "id", "type", "version", "lang", "xmlns", "name", "node",
  "var", "category", "hash", "by", "stamp", "h", "xmlns:stream", "chat",
  "normal", "groupchat", "headline", "get", "set", "unavailable",
  "subscribe", "subscribed", "unsubscribe", "unsubscribed", "probe",
  "both", "none", "remove", "subscription", "ask", "cancel", "modify",
  "wait", "continue", "1.0", "en", "",
};

static void
intern_known_names (void)
{
  static gsize done = 0;

  if (g_once_init_enter (&done))
    {
      for (gsize i = 0; i < G_N_ELEMENTS (known_names); i++)
        g_intern_static_string (known_names[i]);
      g_once_init_leave (&done, 1);
    }
}

/* Recent successful lookups by address, per thread: 64 sets of two,
 * most recent first.  The parser hands over the same libxml2 dictionary
 * pointers again and again; a hit is confirmed with strcmp(), so an
 * address reused for another string can never give a wrong result. */
typedef struct {
  const char *key;
  const char *interned;
} LookupEntry;
static _Thread_local LookupEntry lookup_cache[64][2];

/* The interned copy of @s when there is one, without adding to the
 * table; NULL otherwise. */
static const char *
lookup_interned (const char *s)
{
  guint64 hash = (guint64) (guintptr) s
                 * G_GUINT64_CONSTANT (0x9e3779b97f4a7c15);
  LookupEntry *set = lookup_cache[hash >> 58];
  const char *interned;
  GQuark quark;

  if (set[0].key == s && strcmp (s, set[0].interned) == 0)
    return set[0].interned;
  if (set[1].key == s && strcmp (s, set[1].interned) == 0)
    return set[1].interned;
  intern_known_names ();
  quark = g_quark_try_string (s);
  if (quark == 0)
    return NULL;
  interned = g_quark_to_string (quark);
  set[1] = set[0];
  set[0].key = s;
  set[0].interned = interned;
  return interned;
}

static gboolean
str_equal0 (const char *a, const char *b)
{
  return a == b || (a != NULL && b != NULL && strcmp (a, b) == 0);
}

/* Array capacity for @n items: n itself up to 1, then powers of two, so
 * appending one at a time reallocates O(log n) times. */
static guint
capacity_for (guint n)
{
  return n <= 1 ? n : 1u << g_bit_storage (n - 1);
}

/* ------------------------------------------------------------------ */
/* Names */

/* Bytes that may never appear in an element or attribute name (1), or
 * not first (2); a light check against API misuse (the parser only hands
 * over valid names). */
static const guint8 name_byte_class[128] = {
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 1,  /*  !"#$%&'()*+,-./ */
  2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1,  /* 0-9 :;<=>? */
  1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* @A-O */
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0,  /* P-Z[\]^_ */
  1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* `a-o */
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1,  /* p-z{|}~ DEL */
};

static gboolean
name_is_valid (const char *name)
{
  const guchar *p = (const guchar *) name;

  if (name == NULL || *p == '\0' || (*p < 0x80 && name_byte_class[*p] != 0))
    return FALSE;
  for (p++; *p != '\0'; p++)
    if (*p < 0x80 && name_byte_class[*p] == 1)
      return FALSE;
  return TRUE;
}

static gboolean
attr_name_is_valid (const char *ns, const char *name)
{
  if (!name_is_valid (name))
    return FALSE;
  if (ns == NULL)
    return strcmp (name, "xmlns") != 0;
  return strcmp (ns, "http://www.w3.org/2000/xmlns/") != 0;
}

/* ------------------------------------------------------------------ */
/* Node allocation */

static MynaStanza *
text_new (const char *text, gsize len)
{
  Text *t = g_malloc (sizeof (Text) + len + 1);

  t->head.ref_count = 1;
  t->head.kind = NODE_TEXT;
  t->len = len;
  memcpy (t->text, text, len);
  t->text[len] = '\0';
  return &t->head;
}

/* A new text node holding @a's text followed by @text. */
static MynaStanza *
text_concat (const Text *a, const char *text, gsize len)
{
  Text *t = g_malloc (sizeof (Text) + a->len + len + 1);

  t->head.ref_count = 1;
  t->head.kind = NODE_TEXT;
  t->len = a->len + len;
  memcpy (t->text, a->text, a->len);
  memcpy (t->text + a->len, text, len);
  t->text[t->len] = '\0';
  return &t->head;
}

/* @node (a text node, whose reference is taken) with @text appended:
 * grown in place when nobody else holds it, else a new node. */
static MynaStanza *
text_append (MynaStanza *node, const char *text, gsize len)
{
  Text *t = AS_TEXT (node);
  guintptr start = (guintptr) t->text, at = (guintptr) text;
  MynaStanza *merged;

  if (node->ref_count == 1 && (at < start || at > start + t->len))
    {
      t = g_realloc (t, sizeof (Text) + t->len + len + 1);
      memcpy (t->text + t->len, text, len);
      t->len += len;
      t->text[t->len] = '\0';
      return &t->head;
    }
  merged = text_concat (t, text, len);
  myna_stanza_unref (node);
  return merged;
}

/* An element named @name in @ns, both resolved to interned strings when
 * possible and otherwise copied after the struct. */
static Element *
element_alloc (const char *name, const char *ns)
{
  const char *iname = lookup_interned (name);
  const char *ins = ns != NULL ? lookup_interned (ns) : NULL;
  gsize name_size = iname == NULL ? strlen (name) + 1 : 0;
  gsize ns_size = ns != NULL && ins == NULL ? strlen (ns) + 1 : 0;
  Element *el = g_malloc (sizeof (Element) + name_size + ns_size);
  char *tail = (char *) (el + 1);

  el->head.ref_count = 1;
  el->head.kind = NODE_ELEMENT;
  el->n_children = 0;
  el->n_attrs = 0;
  el->attrs = NULL;
  el->children = NULL;
  el->text_cache = NULL;
  el->name = iname;
  if (iname == NULL)
    el->name = memcpy (tail, name, name_size);
  el->ns = ins;
  if (ns_size > 0)
    el->ns = memcpy (tail + name_size, ns, ns_size);
  return el;
}

/* Fills @attr with copies of @value and, unless interned, of @name and @ns,
 * all in one block starting at attr->value. */
static void
attr_fill (Attr *attr, const char *ns, const char *name, const char *value)
{
  const char *iname = lookup_interned (name);
  const char *ins = ns != NULL ? lookup_interned (ns) : NULL;
  gsize value_size = strlen (value) + 1;
  gsize name_size = iname == NULL ? strlen (name) + 1 : 0;
  gsize ns_size = ns != NULL && ins == NULL ? strlen (ns) + 1 : 0;
  char *block = g_malloc (value_size + name_size + ns_size);

  attr->value = memcpy (block, value, value_size);
  attr->name = iname;
  if (iname == NULL)
    attr->name = memcpy (block + value_size, name, name_size);
  attr->ns = ins;
  if (ns_size > 0)
    attr->ns = memcpy (block + value_size + name_size, ns, ns_size);
}

static void
element_free (Element *el)
{
  for (guint i = 0; i < el->n_children; i++)
    myna_stanza_unref (el->children[i]);
  for (guint i = 0; i < el->n_attrs; i++)
    g_free (el->attrs[i].value);
  g_free (el->children);
  g_free (el->attrs);
  g_free (el->text_cache);
  g_free (el);
}

static void
element_changed (Element *el)
{
  g_clear_pointer (&el->text_cache, g_free);
}

static void
element_push_child (Element *el, MynaStanza *child)
{
  guint n = el->n_children;

  if (n == capacity_for (n))
    el->children = g_renew (MynaStanza *, el->children, capacity_for (n + 1));
  el->children[n] = child;
  el->n_children = n + 1;
  element_changed (el);
}

/* ------------------------------------------------------------------ */
/* Construction and reference counting */

MynaStanza *
myna_stanza_new (const char *name, const char *ns)
{
  g_return_val_if_fail (name_is_valid (name), NULL);

  return &element_alloc (name, ns)->head;
}

MynaStanza *
myna_stanza_new_text (const char *text, gssize len)
{
  g_return_val_if_fail (text != NULL || len == 0, NULL);

  if (len < 0)
    len = strlen (text);
  return text_new (text != NULL ? text : "", len);
}

MynaStanza *
myna_stanza_ref (MynaStanza *stanza)
{
  g_return_val_if_fail (stanza != NULL, NULL);
  g_return_val_if_fail (stanza->ref_count > 0, NULL);

  stanza->ref_count++;
  return stanza;
}

void
myna_stanza_unref (MynaStanza *stanza)
{
  g_return_if_fail (stanza != NULL);
  g_return_if_fail (stanza->ref_count > 0);

  if (--stanza->ref_count > 0)
    return;
  if (IS_ELEMENT (stanza))
    element_free (AS_ELEMENT (stanza));
  else
    g_free (stanza);
}

gboolean
myna_stanza_is_shared (const MynaStanza *stanza)
{
  g_return_val_if_fail (stanza != NULL, FALSE);

  return stanza->ref_count > 1;
}

MynaStanza *
myna_stanza_copy (const MynaStanza *stanza)
{
  const Element *src;
  Element *el;

  g_return_val_if_fail (stanza != NULL, NULL);

  if (!IS_ELEMENT (stanza))
    return text_new (AS_TEXT (stanza)->text, AS_TEXT (stanza)->len);

  src = AS_ELEMENT (stanza);
  el = element_alloc (src->name, src->ns);
  if (src->n_attrs > 0)
    {
      el->attrs = g_new (Attr, capacity_for (src->n_attrs));
      for (guint i = 0; i < src->n_attrs; i++)
        attr_fill (&el->attrs[i], src->attrs[i].ns, src->attrs[i].name,
                   src->attrs[i].value);
      el->n_attrs = src->n_attrs;
    }
  if (src->n_children > 0)
    {
      el->children = g_new (MynaStanza *, capacity_for (src->n_children));
      for (guint i = 0; i < src->n_children; i++)
        el->children[i] = myna_stanza_copy (src->children[i]);
      el->n_children = src->n_children;
    }
  return &el->head;
}

gboolean
myna_stanza_is_text (const MynaStanza *node)
{
  g_return_val_if_fail (node != NULL, FALSE);

  return !IS_ELEMENT (node);
}

const char *
myna_stanza_get_name (const MynaStanza *stanza)
{
  g_return_val_if_fail (stanza != NULL, NULL);

  return IS_ELEMENT (stanza) ? AS_ELEMENT (stanza)->name : NULL;
}

const char *
myna_stanza_get_ns (const MynaStanza *stanza)
{
  g_return_val_if_fail (stanza != NULL, NULL);

  return IS_ELEMENT (stanza) ? AS_ELEMENT (stanza)->ns : NULL;
}

/* ------------------------------------------------------------------ */
/* Attributes */

static int
attr_find (const Element *el, const char *ns, const char *name)
{
  for (guint i = 0; i < el->n_attrs; i++)
    {
      const Attr *attr = &el->attrs[i];

      if (str_equal0 (attr->name, name) && str_equal0 (attr->ns, ns))
        return (int) i;
    }
  return -1;
}

static void
attr_remove (Element *el, guint i)
{
  guint n = el->n_attrs;

  g_free (el->attrs[i].value);
  memmove (&el->attrs[i], &el->attrs[i + 1], (n - i - 1) * sizeof (Attr));
  el->n_attrs = --n;
  if (n == 0)
    g_clear_pointer (&el->attrs, g_free);
  else if (capacity_for (n) < capacity_for (n + 1))
    el->attrs = g_renew (Attr, el->attrs, capacity_for (n));
}

const char *
myna_stanza_get_attr (const MynaStanza *stanza, const char *name)
{
  return myna_stanza_get_attr_ns (stanza, NULL, name);
}

void
myna_stanza_set_attr (MynaStanza *stanza, const char *name, const char *value)
{
  myna_stanza_set_attr_ns (stanza, NULL, name, value);
}

const char *
myna_stanza_get_attr_ns (const MynaStanza *stanza, const char *ns,
                         const char *name)
{
  const Element *el;
  int i;

  g_return_val_if_fail (stanza != NULL, NULL);
  g_return_val_if_fail (name != NULL, NULL);

  if (!IS_ELEMENT (stanza))
    return NULL;
  if (ns != NULL && *ns == '\0')
    ns = NULL;
  el = AS_ELEMENT (stanza);
  i = attr_find (el, ns, name);
  return i >= 0 ? el->attrs[i].value : NULL;
}

void
myna_stanza_set_attr_ns (MynaStanza *stanza, const char *ns,
                         const char *name, const char *value)
{
  Element *el;
  Attr attr;
  int i;

  g_return_if_fail (stanza != NULL && IS_ELEMENT (stanza));
  if (ns != NULL && *ns == '\0')
    ns = NULL;
  g_return_if_fail (attr_name_is_valid (ns, name));

  el = AS_ELEMENT (stanza);
  i = attr_find (el, ns, name);
  if (value == NULL)
    {
      if (i >= 0)
        attr_remove (el, i);
      return;
    }
  if (i >= 0)
    {
      /* The old block may hold @name, @ns or even @value: fill first. */
      char *old = el->attrs[i].value;

      attr_fill (&attr, el->attrs[i].ns, el->attrs[i].name, value);
      el->attrs[i] = attr;
      g_free (old);
      return;
    }
  attr_fill (&attr, ns, name, value);
  if (el->n_attrs == capacity_for (el->n_attrs))
    el->attrs = g_renew (Attr, el->attrs, capacity_for (el->n_attrs + 1));
  el->attrs[el->n_attrs++] = attr;
}

guint
myna_stanza_get_n_attrs (const MynaStanza *stanza)
{
  g_return_val_if_fail (stanza != NULL, 0);

  return IS_ELEMENT (stanza) ? AS_ELEMENT (stanza)->n_attrs : 0;
}

void
myna_stanza_get_attr_nth (const MynaStanza *stanza, guint i, const char **ns,
                          const char **name, const char **value)
{
  const Attr *attr;

  g_return_if_fail (stanza != NULL && IS_ELEMENT (stanza));
  g_return_if_fail (i < AS_ELEMENT (stanza)->n_attrs);

  attr = &AS_ELEMENT (stanza)->attrs[i];
  if (ns != NULL)
    *ns = attr->ns;
  if (name != NULL)
    *name = attr->name;
  if (value != NULL)
    *value = attr->value;
}

const char *
myna_stanza_get_id (const MynaStanza *stanza)
{
  return myna_stanza_get_attr_ns (stanza, NULL, "id");
}

const char *
myna_stanza_get_type (const MynaStanza *stanza)
{
  return myna_stanza_get_attr_ns (stanza, NULL, "type");
}

const char *
myna_stanza_get_from (const MynaStanza *stanza)
{
  return myna_stanza_get_attr_ns (stanza, NULL, "from");
}

const char *
myna_stanza_get_to (const MynaStanza *stanza)
{
  return myna_stanza_get_attr_ns (stanza, NULL, "to");
}

/* ------------------------------------------------------------------ */
/* Children */

guint
myna_stanza_get_n_children (const MynaStanza *stanza)
{
  g_return_val_if_fail (stanza != NULL, 0);

  return IS_ELEMENT (stanza) ? AS_ELEMENT (stanza)->n_children : 0;
}

MynaStanza *
myna_stanza_get_child_nth (const MynaStanza *stanza, guint i)
{
  g_return_val_if_fail (stanza != NULL && IS_ELEMENT (stanza), NULL);
  g_return_val_if_fail (i < AS_ELEMENT (stanza)->n_children, NULL);

  return AS_ELEMENT (stanza)->children[i];
}

/* Whether @child is an element matching @name and @ns (NULL for any);
 * a child without a namespace of its own has its parent's. */
static gboolean
child_matches (const Element *parent, const MynaStanza *child,
               const char *name, const char *ns)
{
  const Element *el;

  if (!IS_ELEMENT (child))
    return FALSE;
  el = AS_ELEMENT (child);
  if (name != NULL && !str_equal0 (el->name, name))
    return FALSE;
  return ns == NULL || str_equal0 (el->ns != NULL ? el->ns : parent->ns, ns);
}

MynaStanza *
myna_stanza_get_child (const MynaStanza *stanza, const char *name,
                       const char *ns)
{
  const Element *el;

  g_return_val_if_fail (stanza != NULL, NULL);

  if (!IS_ELEMENT (stanza))
    return NULL;
  el = AS_ELEMENT (stanza);
  for (guint i = 0; i < el->n_children; i++)
    if (child_matches (el, el->children[i], name, ns))
      return el->children[i];
  return NULL;
}

MynaStanza *
myna_stanza_first_element (const MynaStanza *stanza)
{
  return myna_stanza_get_child (stanza, NULL, NULL);
}

const char *
myna_stanza_get_text (const MynaStanza *stanza)
{
  Element *el;
  const Text *only = NULL;
  guint n_text = 0;
  GString *joined;

  g_return_val_if_fail (stanza != NULL, NULL);

  if (!IS_ELEMENT (stanza))
    return AS_TEXT (stanza)->text;

  /* Logically const: the join of several text children is cached. */
  el = AS_ELEMENT ((MynaStanza *) stanza);
  if (el->text_cache != NULL)
    return el->text_cache;
  for (guint i = 0; i < el->n_children; i++)
    if (!IS_ELEMENT (el->children[i]))
      {
        only = AS_TEXT (el->children[i]);
        n_text++;
      }
  if (n_text <= 1)
    return only != NULL ? only->text : "";

  joined = g_string_new (NULL);
  for (guint i = 0; i < el->n_children; i++)
    if (!IS_ELEMENT (el->children[i]))
      g_string_append_len (joined, AS_TEXT (el->children[i])->text,
                           AS_TEXT (el->children[i])->len);
  el->text_cache = g_string_free (joined, FALSE);
  return el->text_cache;
}

const char *
myna_stanza_get_child_text (const MynaStanza *stanza, const char *name)
{
  MynaStanza *child;

  g_return_val_if_fail (name != NULL, NULL);

  child = myna_stanza_get_child (stanza, name, NULL);
  return child != NULL ? myna_stanza_get_text (child) : NULL;
}

MynaStanza *
myna_stanza_add_child (MynaStanza *parent, const char *name, const char *ns)
{
  Element *child;

  g_return_val_if_fail (parent != NULL && IS_ELEMENT (parent), NULL);
  g_return_val_if_fail (name_is_valid (name), NULL);

  child = element_alloc (name, ns != NULL ? ns : AS_ELEMENT (parent)->ns);
  element_push_child (AS_ELEMENT (parent), &child->head);
  return &child->head;
}

MynaStanza *
myna_stanza_add_text_child (MynaStanza *parent, const char *name,
                            const char *text)
{
  MynaStanza *child;

  g_return_val_if_fail (text != NULL, NULL);

  child = myna_stanza_add_child (parent, name, NULL);
  if (child != NULL)
    myna_stanza_append_text (child, text, -1);
  return child;
}

void
myna_stanza_append_text (MynaStanza *parent, const char *text, gssize len)
{
  Element *el;
  MynaStanza **last;

  g_return_if_fail (parent != NULL && IS_ELEMENT (parent));
  g_return_if_fail (text != NULL || len == 0);

  if (len < 0)
    len = strlen (text);
  if (len == 0)
    return;
  el = AS_ELEMENT (parent);
  last = el->n_children > 0 ? &el->children[el->n_children - 1] : NULL;
  if (last != NULL && !IS_ELEMENT (*last))
    {
      *last = text_append (*last, text, len);
      element_changed (el);
      return;
    }
  element_push_child (el, text_new (text, len));
}

void
myna_stanza_append_take (MynaStanza *parent, MynaStanza *child)
{
  g_return_if_fail (parent != NULL && IS_ELEMENT (parent));
  g_return_if_fail (child != NULL && child != parent);

  element_push_child (AS_ELEMENT (parent), child);
}

void
myna_stanza_append (MynaStanza *parent, MynaStanza *child)
{
  g_return_if_fail (parent != NULL && IS_ELEMENT (parent));
  g_return_if_fail (child != NULL && child != parent);

  element_push_child (AS_ELEMENT (parent), myna_stanza_ref (child));
}

guint
myna_stanza_remove_children (MynaStanza *parent, const char *name,
                             const char *ns)
{
  Element *el;
  guint kept = 0, removed = 0;

  g_return_val_if_fail (parent != NULL, 0);

  if (!IS_ELEMENT (parent))
    return 0;
  el = AS_ELEMENT (parent);
  for (guint i = 0; i < el->n_children; i++)
    {
      MynaStanza *child = el->children[i];
      MynaStanza *prev = kept > 0 ? el->children[kept - 1] : NULL;

      if (child_matches (el, child, name, ns))
        {
          myna_stanza_unref (child);
          removed++;
        }
      else if (prev != NULL && !IS_ELEMENT (prev) && !IS_ELEMENT (child))
        {
          /* Text that the removal made adjacent is merged. */
          el->children[kept - 1] = text_append (prev, AS_TEXT (child)->text,
                                                AS_TEXT (child)->len);
          myna_stanza_unref (child);
        }
      else
        el->children[kept++] = child;
    }
  if (kept == el->n_children)
    return 0;
  if (kept == 0)
    g_clear_pointer (&el->children, g_free);
  else if (capacity_for (kept) < capacity_for (el->n_children))
    el->children = g_renew (MynaStanza *, el->children, capacity_for (kept));
  el->n_children = kept;
  element_changed (el);
  return removed;
}

/* ------------------------------------------------------------------ */
/* Escaping */

enum {
  ESC_TEXT = 1 << 0,    /* needs care in text */
  ESC_ATTR = 1 << 1,    /* needs care in an attribute value */
};

#define T ESC_TEXT | ESC_ATTR
#define A ESC_ATTR
/* Per byte: controls (tab, LF and CR only in attributes, CR also in text,
 * so that neither parser normalization nor line-end handling alters
 * them), the markup characters, and every non-ASCII byte (UTF-8 check). */
static const guint8 escape_class[256] = {
  T, T, T, T, T, T, T, T, T, A, A, T, T, T, T, T,
  T, T, T, T, T, T, T, T, T, T, T, T, T, T, T, T,
  0, 0, A, 0, 0, 0, T, A, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, T, 0, T, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  T, T, T, T, T, T, T, T, T, T, T, T, T, T, T, T,
  T, T, T, T, T, T, T, T, T, T, T, T, T, T, T, T,
  T, T, T, T, T, T, T, T, T, T, T, T, T, T, T, T,
  T, T, T, T, T, T, T, T, T, T, T, T, T, T, T, T,
  T, T, T, T, T, T, T, T, T, T, T, T, T, T, T, T,
  T, T, T, T, T, T, T, T, T, T, T, T, T, T, T, T,
  T, T, T, T, T, T, T, T, T, T, T, T, T, T, T, T,
  T, T, T, T, T, T, T, T, T, T, T, T, T, T, T, T,
};
#undef T
#undef A

#define REPLACEMENT_CHAR "\xef\xbf\xbd"

/* Length of the UTF-8 sequence at @p if it encodes a character allowed
 * in XML 1.0 (no surrogates, no U+FFFE/U+FFFF, nothing past U+10FFFF),
 * else 0. */
static guint
xml_utf8_char_len (const guchar *p, const guchar *end)
{
  gunichar c;
  guint len;

  if (p[0] >= 0xc2 && p[0] <= 0xdf)
    len = 2, c = p[0] & 0x1f;
  else if (p[0] >= 0xe0 && p[0] <= 0xef)
    len = 3, c = p[0] & 0x0f;
  else if (p[0] >= 0xf0 && p[0] <= 0xf4)
    len = 4, c = p[0] & 0x07;
  else
    return 0;
  if ((gsize) (end - p) < len)
    return 0;
  for (guint i = 1; i < len; i++)
    {
      if ((p[i] & 0xc0) != 0x80)
        return 0;
      c = (c << 6) | (p[i] & 0x3f);
    }
  if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10ffff))
      || (c >= 0xd800 && c <= 0xdfff) || c == 0xfffe || c == 0xffff)
    return 0;
  return len;
}

/* Appends the escape for the ASCII byte @c. */
static void
escape_ascii (GString *out, guchar c)
{
  switch (c)
    {
    case '&': g_string_append (out, "&amp;"); break;
    case '<': g_string_append (out, "&lt;"); break;
    case '>': g_string_append (out, "&gt;"); break;
    case '\'': g_string_append (out, "&apos;"); break;
    case '"': g_string_append (out, "&quot;"); break;
    case '\t': g_string_append (out, "&#9;"); break;
    case '\n': g_string_append (out, "&#10;"); break;
    case '\r': g_string_append (out, "&#13;"); break;
    default: g_string_append (out, REPLACEMENT_CHAR); break;
    }
}

/* Escapes @len bytes of @text for the context @mask; a byte sequence
 * that is not an XML character becomes U+FFFD. */
static void
escape_append (GString *out, const char *text, gsize len, guint8 mask)
{
  const guchar *p = (const guchar *) text;
  const guchar *end = p + len;
  const guchar *run = p;

  while (p < end)
    {
      guint n;

      if (G_LIKELY ((escape_class[*p] & mask) == 0))
        {
          p++;
          continue;
        }
      if (*p >= 0x80 && (n = xml_utf8_char_len (p, end)) > 0)
        {
          p += n;
          continue;
        }
      g_string_append_len (out, (const char *) run, p - run);
      if (*p < 0x80)
        escape_ascii (out, *p);
      else
        g_string_append (out, REPLACEMENT_CHAR);
      run = ++p;
    }
  g_string_append_len (out, (const char *) run, p - run);
}

void
myna_xml_escape_append (GString *out, const char *text, gssize len)
{
  g_return_if_fail (out != NULL);
  g_return_if_fail (text != NULL || len == 0);

  if (len < 0)
    len = strlen (text);
  escape_append (out, text, len, ESC_ATTR);
}

/* ------------------------------------------------------------------ */
/* Serialization */

static void
append_attr_value (GString *out, const char *value)
{
  g_string_append_c (out, '\'');
  escape_append (out, value, strlen (value), ESC_ATTR);
  g_string_append_c (out, '\'');
}

/* Attributes, each namespaced one (but xml:) with a generated prefix
 * declared just before it.  A prefix per attribute keeps this stateless;
 * namespaced attributes other than xml:lang are rare. */
static void
serialize_attrs (const Element *el, GString *out)
{
  guint prefix = 0;

  for (guint i = 0; i < el->n_attrs; i++)
    {
      const Attr *attr = &el->attrs[i];

      g_string_append_c (out, ' ');
      if (attr->ns != NULL && strcmp (attr->ns, MYNA_NS_XML) == 0)
        g_string_append (out, "xml:");
      else if (attr->ns != NULL)
        {
          prefix++;
          g_string_append_printf (out, "xmlns:ns%u=", prefix);
          append_attr_value (out, attr->ns);
          g_string_append_printf (out, " ns%u:", prefix);
        }
      g_string_append (out, attr->name);
      g_string_append_c (out, '=');
      append_attr_value (out, attr->value);
    }
}

/* Whether an element in @ns needs no xmlns where @scope is in scope;
 * NULL and "" both mean no namespace. */
static gboolean
ns_in_scope (const char *ns, const char *scope)
{
  if (ns == NULL || ns == scope)
    return TRUE;
  if (*ns == '\0')
    return scope == NULL || *scope == '\0';
  return scope != NULL && strcmp (ns, scope) == 0;
}

static void
serialize_node (const MynaStanza *node, const char *scope, GString *out)
{
  const Element *el;

  if (!IS_ELEMENT (node))
    {
      escape_append (out, AS_TEXT (node)->text, AS_TEXT (node)->len, ESC_TEXT);
      return;
    }
  el = AS_ELEMENT (node);
  g_string_append_c (out, '<');
  g_string_append (out, el->name);
  if (!ns_in_scope (el->ns, scope))
    {
      g_string_append (out, " xmlns=");
      append_attr_value (out, el->ns);
    }
  if (el->ns != NULL)
    scope = el->ns;
  serialize_attrs (el, out);
  if (el->n_children == 0)
    {
      g_string_append (out, "/>");
      return;
    }
  g_string_append_c (out, '>');
  for (guint i = 0; i < el->n_children; i++)
    serialize_node (el->children[i], scope, out);
  g_string_append (out, "</");
  g_string_append (out, el->name);
  g_string_append_c (out, '>');
}

void
myna_stanza_serialize (const MynaStanza *stanza, const char *parent_ns,
                       GString *out)
{
  g_return_if_fail (stanza != NULL);
  g_return_if_fail (out != NULL);

  serialize_node (stanza, parent_ns, out);
}

char *
myna_stanza_to_string (const MynaStanza *stanza)
{
  GString *out;

  g_return_val_if_fail (stanza != NULL, NULL);

  out = g_string_sized_new (256);
  serialize_node (stanza, NULL, out);
  return g_string_free (out, FALSE);
}

/* ------------------------------------------------------------------ */
/* Replies */

/* An empty @stanza-like reply: same name and namespace, same id, to and
 * from swapped, the given type. */
static MynaStanza *
new_reply (const MynaStanza *stanza, const char *type)
{
  const Element *src = AS_ELEMENT (stanza);
  MynaStanza *reply = &element_alloc (src->name, src->ns)->head;
  const char *id = myna_stanza_get_id (stanza);
  const char *to = myna_stanza_get_to (stanza);
  const char *from = myna_stanza_get_from (stanza);

  if (id != NULL)
    myna_stanza_set_attr (reply, "id", id);
  myna_stanza_set_attr (reply, "type", type);
  if (from != NULL)
    myna_stanza_set_attr (reply, "to", from);
  if (to != NULL)
    myna_stanza_set_attr (reply, "from", to);
  return reply;
}

MynaStanza *
myna_stanza_new_iq_result (const MynaStanza *iq)
{
  g_return_val_if_fail (iq != NULL && IS_ELEMENT (iq), NULL);

  return new_reply (iq, "result");
}

MynaStanza *
myna_stanza_add_delay (MynaStanza *stanza, const char *from, GDateTime *stamp,
                       const char *reason)
{
  g_return_val_if_fail (stanza != NULL && IS_ELEMENT (stanza), NULL);

  g_autoptr(GDateTime) utc = stamp != NULL ? g_date_time_to_utc (stamp)
                                           : g_date_time_new_now_utc ();
  g_autofree char *text = g_date_time_format (utc, "%Y-%m-%dT%H:%M:%SZ");
  MynaStanza *delay = myna_stanza_add_child (stanza, "delay", "urn:xmpp:delay");

  if (from != NULL)
    myna_stanza_set_attr (delay, "from", from);
  myna_stanza_set_attr (delay, "stamp", text);
  if (reason != NULL)
    myna_stanza_append_text (delay, reason, -1);
  return delay;
}

MynaStanza *
myna_stanza_new_error (const MynaStanza *stanza, MynaErrorType type,
                       const char *condition, const char *text)
{
  g_autoptr(MynaStanza) reply = NULL;
  MynaStanza *error;

  g_return_val_if_fail (stanza != NULL && IS_ELEMENT (stanza), NULL);
  g_return_val_if_fail (name_is_valid (condition), NULL);
  g_return_val_if_fail (type >= MYNA_ERROR_TYPE_AUTH
                        && type <= MYNA_ERROR_TYPE_WAIT, NULL);

  reply = new_reply (stanza, "error");
  error = myna_stanza_add_child (reply, "error", NULL);
  myna_stanza_set_attr (error, "type", myna_error_type_to_string (type));
  myna_stanza_add_child (error, condition, MYNA_NS_STANZAS);
  if (text != NULL)
    {
      MynaStanza *text_el = myna_stanza_add_child (error, "text",
                                                   MYNA_NS_STANZAS);

      myna_stanza_append_text (text_el, text, -1);
    }
  return g_steal_pointer (&reply);
}

const char *
myna_error_type_to_string (MynaErrorType type)
{
  switch (type)
    {
    case MYNA_ERROR_TYPE_AUTH: return "auth";
    case MYNA_ERROR_TYPE_CANCEL: return "cancel";
    case MYNA_ERROR_TYPE_CONTINUE: return "continue";
    case MYNA_ERROR_TYPE_MODIFY: return "modify";
    case MYNA_ERROR_TYPE_WAIT: return "wait";
    }
  g_return_val_if_reached (NULL);
}

/* ---- concise stanzas ------------------------------------------------------ */

/* Whether @xml holds what g_markup escaping makes of characters XML 1.0
 * cannot carry (references to C0 controls other than tab, LF, CR; bad
 * UTF-8): then an argument, not the template, made the parse fail. */
static gboolean
has_unencodable (const char *xml)
{
  if (!g_utf8_validate (xml, -1, NULL))
    return TRUE;
  for (const char *p = strstr (xml, "&#x"); p != NULL; p = strstr (p + 3, "&#x"))
    {
      char *end = NULL;
      guint64 c = g_ascii_strtoull (p + 3, &end, 16);
      if (end != NULL && *end == ';' && c < 0x20 && c != 0x9 && c != 0xa && c != 0xd)
        return TRUE;
    }
  return FALSE;
}

/* Escapes the arguments into @format and parses the result as one element
 * (@wrap: as the children of a wrapper element, returned). */
static MynaStanza *build_valist (const char *format, gboolean wrap, va_list args)
  G_GNUC_PRINTF (1, 0);

static MynaStanza *
build_valist (const char *format, gboolean wrap, va_list args)
{
  g_autofree char *xml = g_markup_vprintf_escaped (format, args);
  g_autofree char *wrapped = wrap ? g_strconcat ("<payload>", xml, "</payload>", NULL) : NULL;
  g_autoptr(GError) error = NULL;
  MynaStanza *stanza = myna_stanza_parse (wrap ? wrapped : xml, -1, &error);

  if (stanza != NULL)
    return stanza;
  if (has_unencodable (xml))
    g_warning ("stanza template \"%s\": an argument holds characters XML cannot carry (%s)",
               format, error->message);
  else
    g_critical ("stanza template \"%s\" is not %s: %s", format,
                wrap ? "well-formed elements" : "one well-formed element", error->message);
  return NULL;
}

MynaStanza *
myna_stanza_build (const char *format, ...)
{
  va_list args;

  g_return_val_if_fail (format != NULL, NULL);

  va_start (args, format);
  MynaStanza *stanza = build_valist (format, FALSE, args);
  va_end (args);
  return stanza;
}

MynaStanza *
myna_stanza_build_result_valist (const MynaStanza *iq, const char *payload_format,
                                 va_list args)
{
  g_return_val_if_fail (iq != NULL, NULL);

  g_autoptr(MynaStanza) reply = myna_stanza_new_iq_result (iq);
  if (payload_format == NULL)
    return g_steal_pointer (&reply);
  g_autoptr(MynaStanza) wrapper = build_valist (payload_format, TRUE, args);
  if (wrapper == NULL)
    return NULL;
  for (guint i = 0; i < myna_stanza_get_n_children (wrapper); i++)
    {
      MynaStanza *child = myna_stanza_get_child_nth (wrapper, i);
      /* Whitespace between the payload's elements is layout, not content. */
      if (myna_stanza_is_text (child) && strspn (myna_stanza_get_text (child), " \t\r\n")
                                           == strlen (myna_stanza_get_text (child)))
        continue;
      myna_stanza_append (reply, child);
    }
  return g_steal_pointer (&reply);
}

MynaStanza *
myna_stanza_build_result (const MynaStanza *iq, const char *payload_format, ...)
{
  va_list args;

  va_start (args, payload_format);
  MynaStanza *reply = myna_stanza_build_result_valist (iq, payload_format, args);
  va_end (args);
  return reply;
}
