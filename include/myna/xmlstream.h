/* xmlstream.h: bytes in, stanzas out — the XMPP XML stream parser.
 *
 * A MynaXmlStream wraps a libxml2 SAX2 push parser.  Bytes are fed as they
 * arrive, split anywhere; the stream reports the opening <stream:stream>
 * header, each complete top-level element (a stanza or stream-level element
 * such as <auth/> or <starttls/>), the closing </stream:stream>, or one
 * error, after which it reports nothing more.
 *
 * RFC 6120 §11 restrictions are enforced: a DTD, a comment, a processing
 * instruction (other than the XML declaration) or an entity reference other
 * than the five predefined ones gives "restricted-xml"; malformed XML gives
 * "not-well-formed"; a stanza larger than the size limit gives
 * "policy-violation"; nesting or attributes beyond their limits give
 * "policy-violation"; a root element that is not stream:stream in
 * http://etherx.jabber.org/streams gives "invalid-namespace".
 *
 * Free of server state: the client library uses it too. */
#pragma once

#include <glib.h>
#include <myna/stanza.h>

G_BEGIN_DECLS

typedef struct _MynaXmlStream MynaXmlStream;

typedef struct {
  gsize max_stanza_size; /* bytes of one top-level element, 0 = unlimited */
  guint max_depth;       /* element depth below the stream root, 0 = unlimited */
  guint max_attrs;       /* attributes on one element, 0 = unlimited */
} MynaXmlLimits;

typedef struct {
  /* The stream header: an element named "stream" in MYNA_NS_STREAMS with
   * the header's attributes; its default namespace (jabber:client, …) is
   * in myna_xml_stream_get_default_ns().  @header is borrowed. */
  void (*stream_open)  (gpointer user_data, MynaStanza *header);
  /* One complete top-level element, borrowed: ref it to keep it. */
  void (*stanza)       (gpointer user_data, MynaStanza *stanza);
  /* </stream:stream> was read. */
  void (*stream_close) (gpointer user_data);
  /* A stream error: @condition is an RFC 6120 §4.9.3 condition name such as
   * "not-well-formed"; @text says what happened, for logs and <text/>. */
  void (*error)        (gpointer user_data, const char *condition,
                        const char *text);
} MynaXmlStreamCallbacks;

/* Returns: (transfer full); free with myna_xml_stream_free(). */
MynaXmlStream *myna_xml_stream_new (const MynaXmlStreamCallbacks *callbacks,
                                    gpointer user_data);
void           myna_xml_stream_free (MynaXmlStream *stream);
/* Calls the callbacks with @user_data from now on, also for the rest of a
 * feed() in progress (a session handing its stream to another). */
void           myna_xml_stream_set_user_data (MynaXmlStream *stream, gpointer user_data);

void           myna_xml_stream_set_limits (MynaXmlStream *stream,
                                           const MynaXmlLimits *limits);
void           myna_xml_stream_get_limits (MynaXmlStream *stream,
                                           MynaXmlLimits *limits);

/* Feeds @len bytes.  Callbacks run from inside this call.  Returns FALSE once
 * the stream has failed (the error callback has run) or has been closed.
 * A callback may call myna_xml_stream_reset() (a stream restart after
 * STARTTLS or SASL): the bytes after the element that triggered it, in the
 * same call, are then parsed as the start of the new stream.  A callback may
 * also call myna_xml_stream_pause(): feed() then returns TRUE at once after
 * that callback and *@consumed (when not NULL) says how many bytes of @data
 * were used; the caller feeds the rest later. */
gboolean       myna_xml_stream_feed (MynaXmlStream *stream, const char *data,
                                     gsize len, gsize *consumed);

/* Starts a new stream: the next bytes must be a new stream header. */
void           myna_xml_stream_reset (MynaXmlStream *stream);
/* Stops the current feed() after the running callback (see feed()). */
void           myna_xml_stream_pause (MynaXmlStream *stream);

/* The default namespace of the stream header (for example "jabber:client"),
 * or NULL before the header. */
const char    *myna_xml_stream_get_default_ns (MynaXmlStream *stream);

/* Releases the libxml2 parser context while the stream sits between
 * top-level elements, to save memory on idle connections; it is rebuilt
 * transparently on the next byte.  Does nothing in the middle of an element. */
void           myna_xml_stream_release_idle (MynaXmlStream *stream);

/* Parses one serialised element (as stored by modules), in the
 * jabber:client namespace unless it declares its own; no size limits
 * beyond the parser's hard ones.  Returns: (transfer full) (nullable) */
MynaStanza    *myna_stanza_parse (const char *xml, gssize len, GError **error);

/* Bytes held by the stream now (parser context and partial stanza),
 * an estimate for memory accounting. */
gsize          myna_xml_stream_get_memory (MynaXmlStream *stream);

G_END_DECLS
