/* xmlstream.c: the XMPP XML stream parser (include/myna/xmlstream.h):
 * turns the bytes of one XML stream into a header, top-level elements and a
 * close, on top of a libxml2 SAX2 push parser.
 *
 * Pieces.  Before libxml2 sees any byte, a small tokenizer (Scanner) runs
 * over it, tracking quotes, CDATA and element depth.  Input goes to libxml2
 * in pieces that end at each '>' leaving the depth at 1 or 0, that is where
 * the header, a top-level element or the close can complete; a well-formed
 * stanza is one piece.  So when libxml2 returns from a piece that produced
 * a report, nothing after that element has reached libxml2 yet, which makes
 * pause() and a reset() from a callback exact; each report also checks
 * this against libxml2's own byte count.  The tokenizer also counts the
 * attributes of each start tag, so that libxml2 (whose duplicate check is
 * quadratic) never sees too many, and pieces stay within the size budget,
 * so no more than the limit is ever buffered.
 *
 * Boundaries.  Right after the header or a top-level element the stream is
 * "at a boundary": libxml2 holds no unparsed byte.  Whitespace there
 * (keepalives) is skipped without reaching libxml2, the size count restarts,
 * and release_idle() may drop the parser context; a new one is primed
 * later with a synthetic header carrying the original namespace
 * declarations, without reporting it again.
 *
 * Safety.  libxml2 never expands an entity: no XML_PARSE_NOENT, no DTD
 * loading, and every DTD, entity lookup, comment and processing instruction
 * ends the stream with "restricted-xml" at the SAX level.  libxml2 errors
 * reach only our structured handler.  Once the stream ends, the context is
 * stopped (see silence_parser(); it is never freed from inside a callback)
 * and every handler checks parser_done.
 *
 * Callbacks may call myna_xml_stream_reset(), _pause() and _release_idle()
 * but must not free the stream: that has to wait until feed() returns. */
#include <myna/xmlstream.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <string.h>

/* Ceilings that hold even when a limit is 0 ("unlimited") or larger.
 * The size stays below libxml2's own 10 MB limits, so exceeding it is
 * always a policy-violation rather than a libxml2 error. */
#define HARD_MAX_STANZA_SIZE ((gsize) 8 << 20)
#define HARD_MAX_DEPTH 256u
#define HARD_MAX_ATTRS 256u
/* Namespace declarations allowed on one element besides the attributes. */
#define MAX_NS_DECLS 32u
/* Largest piece handed to libxml2 when no '>' comes sooner. */
#define MAX_PIECE ((gsize) 8192)
/* Heap use of one libxml2 push parser context with its dictionary and
 * buffers, as measured with libxml2 2.9.14. */
#define PARSER_MEMORY 16500

/* Where the Scanner is in the markup. */
typedef enum {
  SCAN_TEXT,      /* character data: skip to the next '<' */
  SCAN_LT,        /* just after '<' */
  SCAN_BANG,      /* just after "<!" */
  SCAN_TAG,       /* in a start tag, outside quotes */
  SCAN_QUOTE,     /* in a quoted attribute value */
  SCAN_END,       /* in an end tag */
  SCAN_CDATA,     /* in a CDATA section */
} ScanState;

/* The tokenizer that cuts input into pieces (see above).  On well-formed
 * input it agrees with libxml2; on anything else libxml2 reports an error
 * or the callbacks' byte count check does. */
typedef struct {
  guint32 depth;      /* open elements, the stream root included */
  guint32 eq;         /* '=' in the current start tag */
  guint8 state;       /* a ScanState */
  guint8 quote;       /* the closing quote in SCAN_QUOTE */
  guint8 brackets;    /* ']' just seen in SCAN_CDATA, up to 2 */
  gboolean slash;     /* the last byte of the previous piece, in SCAN_TAG,
                       * was '/' */
} Scanner;

typedef enum {
  STREAM_START,   /* waiting for the stream header */
  STREAM_OPEN,    /* header read */
  STREAM_DONE,    /* closed or failed: reports nothing more */
} StreamState;

struct _MynaXmlStream {
  MynaXmlStreamCallbacks callbacks;
  gpointer user_data;
  MynaXmlLimits limits;
  StreamState state;

  xmlParserCtxtPtr ctxt;  /* NULL before the first byte and when idle */
  xmlParserCtxtPtr spare; /* the context of a stream that was reset */
  guint level;            /* elements open in ctxt, the root included */
  MynaStanza *top;        /* the top-level element being built (owned) */
  GPtrArray *open;        /* open elements below the root (borrowed) */
  GString *text;          /* character data not yet added to the tree */
  GString *scratch;       /* attribute values being decoded */
  gsize element_bytes;    /* bytes fed since the last boundary */
  gsize ctxt_bytes;       /* bytes fed to ctxt, priming included */
  Scanner scanner;

  char *default_ns;       /* of the stream header */
  char *reopen;           /* synthetic header priming a rebuilt ctxt */

  guint in_feed : 1;
  guint in_parse : 1;         /* inside xmlParseChunk() */
  guint priming : 1;          /* parsing the synthetic header */
  guint parser_done : 1;      /* ctxt must report nothing more */
  guint at_boundary : 1;
  guint boundary_pending : 1; /* this piece ends at a boundary */
  guint stop : 1;             /* the stream ended during this feed() */
  guint paused : 1;
  guint want_reset : 1;
  guint want_release : 1;
};

static gsize
max_stanza_size (const MynaXmlStream *self)
{
  gsize max = self->limits.max_stanza_size;

  return max == 0 || max > HARD_MAX_STANZA_SIZE ? HARD_MAX_STANZA_SIZE : max;
}

static guint
max_depth (const MynaXmlStream *self)
{
  guint max = self->limits.max_depth;

  return max == 0 || max > HARD_MAX_DEPTH ? HARD_MAX_DEPTH : max;
}

static guint
max_attrs (const MynaXmlStream *self)
{
  guint max = self->limits.max_attrs;

  return max == 0 || max > HARD_MAX_ATTRS ? HARD_MAX_ATTRS : max;
}

static gboolean
is_xml_space (char c)
{
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* ------------------------------------------------------------------ */
/* Ending the stream */

/* Makes the current context stop and report nothing more.  This is
 * xmlStopParser() without freeing the input, which the libxml2 code that
 * called us may still be reading. */
static void
silence_parser (MynaXmlStream *self)
{
  self->parser_done = TRUE;
  if (self->ctxt != NULL)
    {
      self->ctxt->disableSAX = 1;
      self->ctxt->instate = XML_PARSER_EOF;
    }
}

static void
stream_end (MynaXmlStream *self)
{
  self->state = STREAM_DONE;
  self->stop = TRUE;
  silence_parser (self);
}

static void
stream_fail (MynaXmlStream *self, const char *condition, const char *text)
{
  if (self->state == STREAM_DONE || self->parser_done)
    return;
  stream_end (self);
  if (self->callbacks.error != NULL)
    self->callbacks.error (self->user_data, condition, text);
}

static void
stream_restricted (MynaXmlStream *self, const char *what)
{
  g_autofree char *text = g_strdup_printf ("%s not allowed in XMPP", what);

  stream_fail (self, "restricted-xml", text);
}

/* ------------------------------------------------------------------ */
/* Tree building */

/* libxml2 without entity substitution hands over each '&' of an attribute
 * value (namespace declarations included) as "&#38;"; no other '&' can
 * occur.  Appends @len bytes of @value to @out with that undone. */
static void
append_decoded (GString *out, const char *value, gsize len)
{
  const char *end = value + len;
  const char *amp;

  while ((amp = memchr (value, '&', end - value)) != NULL)
    {
      g_string_append_len (out, value, amp - value);
      g_string_append_c (out, '&');
      value = amp + 1;
      if (end - value >= 4 && memcmp (value, "#38;", 4) == 0)
        value += 4;
    }
  g_string_append_len (out, value, end - value);
}

/* A namespace URI from libxml2 as the caller should see it.  Returns
 * @uri itself or a decoded copy stored in @scratch. */
static const char *
decode_uri (MynaXmlStream *self, const xmlChar *uri)
{
  const char *s = (const char *) uri;

  if (s == NULL || strchr (s, '&') == NULL)
    return s;
  g_string_truncate (self->scratch, 0);
  append_decoded (self->scratch, s, strlen (s));
  return self->scratch->str;
}

static void
add_attributes (MynaXmlStream *self, MynaStanza *el, int n,
                const xmlChar **attrs)
{
  for (int i = 0; i < n; i++, attrs += 5)
    {
      const char *value = (const char *) attrs[3];
      gsize len = attrs[4] - attrs[3];
      const char *ns = (const char *) attrs[2];
      g_autofree char *ns_copy = NULL;

      if (ns != NULL && strchr (ns, '&') != NULL)
        ns = ns_copy = g_strdup (decode_uri (self, attrs[2]));
      g_string_truncate (self->scratch, 0);
      append_decoded (self->scratch, value, len);
      myna_stanza_set_attr_ns (el, ns, (const char *) attrs[0],
                               self->scratch->str);
    }
}

static void
flush_text (MynaXmlStream *self)
{
  if (self->text->len == 0)
    return;
  myna_stanza_append_text (g_ptr_array_index (self->open, self->open->len - 1),
                           self->text->str, self->text->len);
  /* Keep the buffer for the next text, unless a large one made it big. */
  if (self->text->allocated_len > 64 * 1024)
    {
      g_string_free (self->text, TRUE);
      self->text = g_string_sized_new (64);
    }
  else
    g_string_truncate (self->text, 0);
}

/* Whether libxml2 has parsed every byte it was given, as it has at each
 * report on well-formed input (see scanner_run()); in a start tag, all but
 * the closing ">" or "/>", which libxml2 consumes after the callback.
 * Fails the stream if not, since pause() and reset() could not be exact
 * then. */
static gboolean
report_in_step (MynaXmlStream *self, gboolean in_start_tag)
{
  long consumed = xmlByteConsumed (self->ctxt);
  const char *rest = (const char *) self->ctxt->input->cur;
  gsize n_rest = self->ctxt_bytes - consumed;

  if (consumed >= 0 && (gsize) consumed <= self->ctxt_bytes
      && (in_start_tag ? (n_rest == 1 && rest[0] == '>')
                         || (n_rest == 2 && rest[0] == '/' && rest[1] == '>')
                       : n_rest == 0))
    return TRUE;
  stream_fail (self, "not-well-formed", "markup the stream cannot follow");
  return FALSE;
}

/* Records what a rebuilt context needs: the root's prefix and namespace
 * declarations, as a synthetic start tag. */
static void
remember_header (MynaXmlStream *self, const xmlChar *prefix, int n,
                 const xmlChar **namespaces)
{
  GString *reopen = g_string_new ("<");

  if (prefix != NULL)
    g_string_append_printf (reopen, "%s:", (const char *) prefix);
  g_string_append (reopen, "stream");
  g_clear_pointer (&self->default_ns, g_free);
  for (int i = 0; i < n; i++)
    {
      const char *decl_prefix = (const char *) namespaces[2 * i];
      const char *uri = decode_uri (self, namespaces[2 * i + 1]);

      if (decl_prefix == NULL)
        {
          g_free (self->default_ns);
          self->default_ns = g_strdup (uri);
          g_string_append (reopen, " xmlns='");
        }
      else
        g_string_append_printf (reopen, " xmlns:%s='", decl_prefix);
      myna_xml_escape_append (reopen, uri, -1);
      g_string_append_c (reopen, '\'');
    }
  g_string_append_c (reopen, '>');
  g_free (self->reopen);
  self->reopen = g_string_free (reopen, FALSE);
}

static void
open_stream (MynaXmlStream *self, const xmlChar *localname,
             const xmlChar *prefix, const xmlChar *uri, int n_namespaces,
             const xmlChar **namespaces, int n_attrs, const xmlChar **attrs)
{
  g_autoptr(MynaStanza) header = NULL;

  self->level = 1;
  if (self->priming)
    return;
  if (strcmp ((const char *) localname, "stream") != 0 || uri == NULL
      || strcmp ((const char *) uri, MYNA_NS_STREAMS) != 0)
    {
      stream_fail (self, "invalid-namespace",
                   "the root element is not <stream> in " MYNA_NS_STREAMS);
      return;
    }
  if ((guint) n_attrs > max_attrs (self))
    {
      stream_fail (self, "policy-violation", "too many attributes");
      return;
    }
  if (!report_in_step (self, TRUE))
    return;
  header = myna_stanza_new ("stream", MYNA_NS_STREAMS);
  add_attributes (self, header, n_attrs, attrs);
  remember_header (self, prefix, n_namespaces, namespaces);
  self->state = STREAM_OPEN;
  self->boundary_pending = TRUE;
  if (self->callbacks.stream_open != NULL)
    self->callbacks.stream_open (self->user_data, header);
}

/* The namespace to store for an element whose libxml2 URI is @uri: ""
 * (explicitly none) when it has none but its parent has one. */
static const char *
element_ns (MynaXmlStream *self, const char *uri)
{
  const char *parent_ns;

  if (uri != NULL)
    return uri;
  if (self->open->len > 0)
    parent_ns = myna_stanza_get_ns (g_ptr_array_index (self->open,
                                                       self->open->len - 1));
  else
    parent_ns = self->default_ns;
  return parent_ns != NULL ? "" : NULL;
}

static void
on_start_element (void *ctx, const xmlChar *localname, const xmlChar *prefix,
                  const xmlChar *uri, int n_namespaces,
                  const xmlChar **namespaces, int n_attrs, int n_defaulted,
                  const xmlChar **attrs)
{
  MynaXmlStream *self = ctx;
  g_autoptr(MynaStanza) el = NULL;
  MynaStanza *parent;

  if (self->parser_done)
    return;
  if (self->level == 0)
    {
      open_stream (self, localname, prefix, uri, n_namespaces, namespaces,
                   n_attrs, attrs);
      return;
    }
  if (self->level > max_depth (self))
    {
      stream_fail (self, "policy-violation", "elements nested too deeply");
      return;
    }
  if ((guint) n_attrs > max_attrs (self))
    {
      stream_fail (self, "policy-violation", "too many attributes");
      return;
    }
  if (self->open->len > 0)
    flush_text (self);
  el = myna_stanza_new ((const char *) localname,
                        element_ns (self, decode_uri (self, uri)));
  if (el == NULL)
    {
      stream_fail (self, "internal-server-error", "cannot build an element");
      return;
    }
  add_attributes (self, el, n_attrs, attrs);
  parent = self->open->len > 0 ? g_ptr_array_index (self->open,
                                                    self->open->len - 1) : NULL;
  g_ptr_array_add (self->open, el);
  if (parent != NULL)
    myna_stanza_append_take (parent, g_steal_pointer (&el));
  else
    self->top = g_steal_pointer (&el);
  self->level++;
}

static void
close_stream (MynaXmlStream *self)
{
  self->level = 0;
  stream_end (self);
  if (self->callbacks.stream_close != NULL)
    self->callbacks.stream_close (self->user_data);
}

static void
deliver_top (MynaXmlStream *self)
{
  g_autoptr(MynaStanza) stanza = g_steal_pointer (&self->top);

  if (!report_in_step (self, FALSE))
    return;
  self->boundary_pending = TRUE;
  if (self->callbacks.stanza != NULL)
    self->callbacks.stanza (self->user_data, stanza);
}

static void
on_end_element (void *ctx, const xmlChar *localname, const xmlChar *prefix,
                const xmlChar *uri)
{
  MynaXmlStream *self = ctx;

  if (self->parser_done)
    return;
  if (self->level <= 1)
    {
      close_stream (self);
      return;
    }
  flush_text (self);
  g_ptr_array_set_size (self->open, self->open->len - 1);
  if (--self->level == 1)
    deliver_top (self);
}

static void
on_characters (void *ctx, const xmlChar *ch, int len)
{
  MynaXmlStream *self = ctx;

  if (self->parser_done)
    return;
  if (self->level <= 1)
    {
      for (int i = 0; i < len; i++)
        if (!is_xml_space (ch[i]))
          {
            stream_fail (self, "bad-format", "text outside of a stanza");
            return;
          }
      return;
    }
  g_string_append_len (self->text, (const char *) ch, len);
}

/* libxml2 2.9 checks the characters of a CDATA section in push mode
 * without refusing overlong UTF-8 forms; everything else it validates. */
static void
on_cdata (void *ctx, const xmlChar *ch, int len)
{
  MynaXmlStream *self = ctx;

  if (!g_utf8_validate_len ((const char *) ch, len, NULL))
    stream_fail (self, "not-well-formed", "invalid UTF-8 in a CDATA section");
  else
    on_characters (ctx, ch, len);
}

/* ------------------------------------------------------------------ */
/* Restricted XML and errors */

static void
on_comment (void *ctx, const xmlChar *value)
{
  stream_restricted (ctx, "comments are");
}

static void
on_processing_instruction (void *ctx, const xmlChar *target,
                           const xmlChar *data)
{
  stream_restricted (ctx, "processing instructions are");
}

static void
on_subset (void *ctx, const xmlChar *name, const xmlChar *external_id,
           const xmlChar *system_id)
{
  stream_restricted (ctx, "document type declarations are");
}

static xmlEntityPtr
on_get_entity (void *ctx, const xmlChar *name)
{
  stream_restricted (ctx, "entity references other than the predefined are");
  return NULL;
}

static void
on_reference (void *ctx, const xmlChar *name)
{
  on_get_entity (ctx, name);
}

static void
on_entity_decl (void *ctx, const xmlChar *name, int type,
                const xmlChar *public_id, const xmlChar *system_id,
                xmlChar *content)
{
  on_subset (ctx, name, public_id, system_id);
}

static xmlParserInputPtr
on_resolve_entity (void *ctx, const xmlChar *public_id,
                   const xmlChar *system_id)
{
  on_subset (ctx, NULL, public_id, system_id);
  return NULL;
}

static void
on_xml_error (void *ctx, xmlErrorPtr error)
{
  MynaXmlStream *self = ctx;
  g_autofree char *message = NULL;

  if (self->parser_done || error->level == XML_ERR_WARNING)
    return;
  /* An unusual namespace name is not a reason to drop a stream. */
  if (error->code == XML_WAR_NS_URI || error->code == XML_WAR_NS_URI_RELATIVE)
    return;
  message = g_strdup (error->message != NULL ? error->message : "error");
  g_strdelimit (g_strchomp (message), "\r\n", ' ');
  stream_fail (self, "not-well-formed", message);
}

static const xmlSAXHandler *
sax_handler (void)
{
  static xmlSAXHandler sax;
  static gsize done = 0;

  if (g_once_init_enter (&done))
    {
      xmlInitParser ();
      memset (&sax, 0, sizeof sax);
      sax.initialized = XML_SAX2_MAGIC;
      sax.startElementNs = on_start_element;
      sax.endElementNs = on_end_element;
      sax.characters = on_characters;
      sax.ignorableWhitespace = on_characters;
      sax.cdataBlock = on_cdata;
      sax.comment = on_comment;
      sax.processingInstruction = on_processing_instruction;
      sax.internalSubset = on_subset;
      sax.externalSubset = on_subset;
      sax.getEntity = on_get_entity;
      sax.getParameterEntity = on_get_entity;
      sax.reference = on_reference;
      sax.entityDecl = on_entity_decl;
      sax.resolveEntity = on_resolve_entity;
      sax.serror = on_xml_error;
      g_once_init_leave (&done, 1);
    }
  return &sax;
}

/* ------------------------------------------------------------------ */
/* Parser lifetime */

/* Frees the parser, or with @keep sets its libxml2 context aside for the
 * next stream (a login restarts the stream after SASL: without this it
 * made two contexts, a dozen allocations and a dictionary each). */
static void
parser_clear (MynaXmlStream *self, gboolean keep)
{
  /* libxml2 builds a document of its own while it skims a DTD. */
  if (self->ctxt != NULL && self->ctxt->myDoc != NULL)
    g_clear_pointer (&self->ctxt->myDoc, xmlFreeDoc);
  g_clear_pointer (&self->spare, xmlFreeParserCtxt);
  if (keep)
    self->spare = g_steal_pointer (&self->ctxt);
  g_clear_pointer (&self->ctxt, xmlFreeParserCtxt);
  self->ctxt_bytes = 0;
  g_clear_pointer (&self->top, myna_stanza_unref);
  g_clear_pointer (&self->open, g_ptr_array_unref);
  if (self->text != NULL)
    g_string_free (g_steal_pointer (&self->text), TRUE);
  if (self->scratch != NULL)
    g_string_free (g_steal_pointer (&self->scratch), TRUE);
  self->level = 0;
  self->parser_done = FALSE;
}

static void
parser_free (MynaXmlStream *self)
{
  parser_clear (self, FALSE);
}

static gboolean
parser_prime (MynaXmlStream *self)
{
  gsize len = strlen (self->reopen);

  self->priming = TRUE;
  self->in_parse = TRUE;
  self->ctxt_bytes += len;
  xmlParseChunk (self->ctxt, self->reopen, len, 0);
  self->in_parse = FALSE;
  self->priming = FALSE;
  return self->level == 1 && !self->parser_done;
}

/* Creates the libxml2 context, primed when the header was already read. */
static gboolean
parser_start (MynaXmlStream *self)
{
  if (self->spare != NULL)
    {
      self->ctxt = g_steal_pointer (&self->spare);
      if (xmlCtxtResetPush (self->ctxt, NULL, 0, NULL, NULL) != 0)
        g_clear_pointer (&self->ctxt, xmlFreeParserCtxt);
    }
  if (self->ctxt == NULL)
    self->ctxt = xmlCreatePushParserCtxt ((xmlSAXHandler *) sax_handler (),
                                          self, NULL, 0, NULL);
  if (self->ctxt == NULL)
    {
      stream_fail (self, "internal-server-error", "cannot create a parser");
      return FALSE;
    }
  xmlCtxtUseOptions (self->ctxt, XML_PARSE_NONET | XML_PARSE_IGNORE_ENC
                                 | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  xmlSwitchEncoding (self->ctxt, XML_CHAR_ENCODING_UTF8);
  self->open = g_ptr_array_sized_new (8);
  self->text = g_string_sized_new (64);
  self->scratch = g_string_sized_new (64);
  if (self->state == STREAM_OPEN && !parser_prime (self))
    {
      stream_fail (self, "internal-server-error", "cannot restore the parser");
      return FALSE;
    }
  return TRUE;
}

static void
stream_reset_now (MynaXmlStream *self)
{
  parser_clear (self, TRUE);
  g_clear_pointer (&self->default_ns, g_free);
  g_clear_pointer (&self->reopen, g_free);
  self->state = STREAM_START;
  self->element_bytes = 0;
  memset (&self->scanner, 0, sizeof self->scanner);
  self->at_boundary = TRUE;
  self->boundary_pending = FALSE;
  self->want_reset = FALSE;
  self->want_release = FALSE;
}

/* ------------------------------------------------------------------ */
/* Feeding */

/* Applies what the callbacks of the piece just parsed asked for. */
static void
after_piece (MynaXmlStream *self)
{
  if (self->want_reset)
    {
      stream_reset_now (self);
      return;
    }
  if (self->boundary_pending && self->state == STREAM_OPEN)
    {
      self->at_boundary = TRUE;
      self->element_bytes = 0;
    }
  self->boundary_pending = FALSE;
  if (self->want_release && self->at_boundary)
    parser_free (self);
  self->want_release = FALSE;
}

/* Bytes that end a run of ordinary start tag bytes. */
static const guint8 tag_special[256] = {
  ['>'] = 1, ['='] = 1, ['\''] = 1, ['"'] = 1,
};

/* Runs @sc over up to @len bytes and returns the length of the next
 * piece: through the first '>' that leaves the depth at 1 or less, else all
 * of @len.  When a start tag has more than @max_eq '=' (attributes and
 * namespace declarations), sets *@too_many and stops just before. */
static gsize
scanner_run (Scanner *sc, const char *data, gsize len, guint max_eq,
             gboolean *too_many)
{
  const char *p = data, *end = data + len;

  while (p < end)
    switch (sc->state)
      {
      case SCAN_TEXT:
        if ((p = memchr (p, '<', end - p)) == NULL)
          return len;
        p++;
        sc->state = SCAN_LT;
        break;
      case SCAN_LT:
        sc->state = *p == '/' ? SCAN_END : *p == '!' ? SCAN_BANG
                    : *p == '?' ? SCAN_TEXT : SCAN_TAG;
        if (sc->state != SCAN_TAG)
          p++;
        sc->eq = 0;
        sc->slash = FALSE;
        break;
      case SCAN_BANG:
        sc->state = *p++ == '[' ? SCAN_CDATA : SCAN_TEXT;
        sc->brackets = 0;
        break;
      case SCAN_TAG:
        while (p < end && !tag_special[(guchar) *p])
          p++;
        if (p == end)
          {
            sc->slash = end[-1] == '/';
            break;
          }
        if (*p == '>')
          {
            if (p > data ? p[-1] != '/' : !sc->slash)
              sc->depth++;
            sc->state = SCAN_TEXT;
            if (++p, sc->depth <= 1)
              return p - data;
          }
        else if (*p != '=')
          {
            sc->quote = *p++;
            sc->state = SCAN_QUOTE;
          }
        else if (++sc->eq > max_eq)
          {
            *too_many = TRUE;
            return p - data;
          }
        else
          p++;
        break;
      case SCAN_QUOTE:
        if ((p = memchr (p, sc->quote, end - p)) == NULL)
          return len;
        p++;
        sc->state = SCAN_TAG;
        sc->slash = FALSE;
        break;
      case SCAN_END:
        if ((p = memchr (p, '>', end - p)) == NULL)
          return len;
        p++;
        sc->state = SCAN_TEXT;
        if (sc->depth > 0)
          sc->depth--;
        if (sc->depth <= 1)
          return p - data;
        break;
      case SCAN_CDATA:
        for (; p < end; p++)
          if (*p == ']')
            sc->brackets = MIN (sc->brackets + 1, 2);
          else if (*p == '>' && sc->brackets == 2)
            {
              sc->state = SCAN_TEXT;
              p++;
              break;
            }
          else
            sc->brackets = 0;
        break;
      }
  return len;
}

static void
parse (MynaXmlStream *self, const char *data, gsize len)
{
  self->element_bytes += len;
  self->ctxt_bytes += len;
  self->at_boundary = FALSE;
  self->in_parse = TRUE;
  xmlParseChunk (self->ctxt, data, (int) len, 0);
  self->in_parse = FALSE;
  after_piece (self);
}

/* Feeds libxml2 the next piece of @data (see scanner_run()), after any
 * whitespace at a boundary and within the size budget.  Returns how many
 * bytes were used. */
static gsize
feed_piece (MynaXmlStream *self, const char *data, gsize len)
{
  gsize skip = 0, budget, piece;
  gboolean too_many = FALSE;

  if (self->at_boundary)
    {
      while (skip < len && is_xml_space (data[skip]))
        skip++;
      if (skip == len)
        return len;
    }
  data += skip;
  len -= skip;
  if (self->ctxt == NULL && !parser_start (self))
    return skip;
  budget = max_stanza_size (self);
  budget = budget > self->element_bytes ? budget - self->element_bytes : 0;
  if (budget == 0)
    {
      stream_fail (self, "policy-violation", "stanza too large");
      return skip;
    }
  piece = scanner_run (&self->scanner, data, MIN (len, MIN (MAX_PIECE, budget)),
                       max_attrs (self) + MAX_NS_DECLS, &too_many);
  if (piece > 0)
    parse (self, data, piece);
  if (too_many && !self->stop)
    stream_fail (self, "policy-violation", "too many attributes");
  return skip + piece;
}

gboolean
myna_xml_stream_feed (MynaXmlStream *self, const char *data, gsize len,
                      gsize *consumed)
{
  gsize pos = 0;

  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (data != NULL || len == 0, FALSE);
  g_return_val_if_fail (!self->in_feed, FALSE);

  if (consumed != NULL)
    *consumed = 0;
  if (self->state == STREAM_DONE)
    return FALSE;

  self->in_feed = TRUE;
  self->stop = FALSE;
  self->paused = FALSE;
  while (pos < len && !self->stop && !self->paused)
    pos += feed_piece (self, data + pos, len - pos);
  self->in_feed = FALSE;
  self->paused = FALSE;
  if (self->want_reset)
    stream_reset_now (self);
  else if (self->state == STREAM_DONE)
    parser_free (self);
  if (consumed != NULL)
    *consumed = pos;
  return !self->stop;
}

/* ------------------------------------------------------------------ */
/* Public API */

MynaXmlStream *
myna_xml_stream_new (const MynaXmlStreamCallbacks *callbacks,
                     gpointer user_data)
{
  MynaXmlStream *self;

  g_return_val_if_fail (callbacks != NULL, NULL);

  sax_handler ();
  self = g_new0 (MynaXmlStream, 1);
  self->callbacks = *callbacks;
  self->user_data = user_data;
  /* Defaults for a stream whose owner sets none. */
  self->limits.max_stanza_size = 256 * 1024;
  self->limits.max_depth = 64;
  self->limits.max_attrs = 64;
  self->state = STREAM_START;
  self->at_boundary = TRUE;
  return self;
}

void
myna_xml_stream_free (MynaXmlStream *self)
{
  if (self == NULL)
    return;
  g_return_if_fail (!self->in_feed);

  parser_free (self);
  g_free (self->default_ns);
  g_free (self->reopen);
  g_free (self);
}

void
myna_xml_stream_set_user_data (MynaXmlStream *self, gpointer user_data)
{
  g_return_if_fail (self != NULL);
  self->user_data = user_data;
}

void
myna_xml_stream_set_limits (MynaXmlStream *self, const MynaXmlLimits *limits)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail (limits != NULL);

  self->limits = *limits;
}

void
myna_xml_stream_get_limits (MynaXmlStream *self, MynaXmlLimits *limits)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail (limits != NULL);

  *limits = self->limits;
}

void
myna_xml_stream_reset (MynaXmlStream *self)
{
  g_return_if_fail (self != NULL);

  if (self->in_parse)
    {
      /* From a callback: the rest of the piece must not be reported;
       * the context is replaced once libxml2 has returned. */
      self->want_reset = TRUE;
      silence_parser (self);
      return;
    }
  stream_reset_now (self);
}

void
myna_xml_stream_pause (MynaXmlStream *self)
{
  g_return_if_fail (self != NULL);

  if (self->in_feed)
    self->paused = TRUE;
}

const char *
myna_xml_stream_get_default_ns (MynaXmlStream *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  return self->state == STREAM_START ? NULL : self->default_ns;
}

void
myna_xml_stream_release_idle (MynaXmlStream *self)
{
  g_return_if_fail (self != NULL);

  if (self->in_parse)
    self->want_release = TRUE;
  else
    {
      /* The context a reset stream set aside for its next header: a
       * client that does not send one holds it no longer (it also still
       * holds the previous stream's input, the SASL exchange included). */
      g_clear_pointer (&self->spare, xmlFreeParserCtxt);
      if (self->ctxt != NULL && self->at_boundary && self->state == STREAM_OPEN)
        parser_free (self);
    }
}

gsize
myna_xml_stream_get_memory (MynaXmlStream *self)
{
  gsize total;

  g_return_val_if_fail (self != NULL, 0);

  total = sizeof *self;
  if (self->reopen != NULL)
    total += strlen (self->reopen) + 1;
  if (self->default_ns != NULL)
    total += strlen (self->default_ns) + 1;
  if (self->spare != NULL)
    total += PARSER_MEMORY;
  if (self->ctxt == NULL)
    return total;
  total += PARSER_MEMORY + self->open->len * sizeof (gpointer);
  total += self->text->allocated_len + self->scratch->allocated_len;
  if (self->ctxt->input != NULL)
    total += self->ctxt->input->end - self->ctxt->input->base;
  /* The tree built so far is about the size of its source. */
  return total + self->element_bytes;
}

/* ---- one element from a string ------------------------------------------- */

typedef struct {
  MynaStanza *element;
  char       *problem;
} ParseOne;

static void
parse_one_element (gpointer user_data, MynaStanza *element)
{
  ParseOne *p = user_data;

  if (p->element == NULL && p->problem == NULL)
    p->element = myna_stanza_ref (element);
  else if (p->problem == NULL)
    p->problem = g_strdup ("more than one element");
}

static void
parse_one_error (gpointer user_data, const char *condition, const char *text)
{
  ParseOne *p = user_data;

  if (p->problem == NULL)
    p->problem = g_strdup_printf ("%s: %s", condition, text != NULL ? text : "");
}

MynaStanza *
myna_stanza_parse (const char *xml, gssize len, GError **error)
{
  static const MynaXmlStreamCallbacks callbacks = {
    .stanza = parse_one_element,
    .error = parse_one_error,
  };
  static const char header[] = "<stream:stream xmlns='" MYNA_NS_CLIENT "' "
                               "xmlns:stream='" MYNA_NS_STREAMS "'>";
  MynaXmlLimits limits = { 0 };
  ParseOne p = { NULL, NULL };

  g_return_val_if_fail (xml != NULL, NULL);

  MynaXmlStream *stream = myna_xml_stream_new (&callbacks, &p);
  myna_xml_stream_set_limits (stream, &limits);
  myna_xml_stream_feed (stream, header, sizeof header - 1, NULL);
  myna_xml_stream_feed (stream, xml, len < 0 ? strlen (xml) : (gsize) len, NULL);
  myna_xml_stream_free (stream);
  if (p.problem == NULL && p.element == NULL)
    p.problem = g_strdup ("no complete element");
  if (p.problem != NULL)
    {
      g_set_error (error, G_MARKUP_ERROR, G_MARKUP_ERROR_PARSE, "%s", p.problem);
      g_free (p.problem);
      g_clear_pointer (&p.element, myna_stanza_unref);
    }
  return p.element;
}
