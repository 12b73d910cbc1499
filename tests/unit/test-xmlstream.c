/* test-xmlstream.c: unit tests for MynaXmlStream, the XMPP stream parser.
 *
 * Each input is checked against an expected event log, fed whole, split
 * in two at every byte boundary, and byte by byte (with and without
 * release_idle() between feeds): the events must always be the same. */
#include <myna/xmlstream.h>

#include <string.h>

#define STREAM_HEADER \
  "<?xml version='1.0'?>" \
  "<stream:stream xmlns='jabber:client'" \
  " xmlns:stream='http://etherx.jabber.org/streams'" \
  " to='example.com' version='1.0' xml:lang='en'>"
#define OPEN_EVENT \
  "open <stream xmlns='http://etherx.jabber.org/streams' to='example.com'" \
  " version='1.0' xml:lang='en'/> ns=jabber:client\n"

typedef struct {
  /* options */
  const char *reset_on;     /* reset() in the callback of this element */
  gboolean pause_each;      /* pause() in every callback */
  gboolean release_in_cb;   /* release_idle() in every stanza callback */
  gboolean release_between; /* release_idle() after every feed() */
  MynaXmlLimits limits;     /* all zero: the defaults */
  /* state */
  MynaXmlStream *stream;
  GString *log;
  gboolean paused;
} Run;

static void
on_open (gpointer user_data, MynaStanza *header)
{
  Run *run = user_data;
  const char *ns = myna_xml_stream_get_default_ns (run->stream);
  g_autofree char *s = myna_stanza_to_string (header);

  g_string_append_printf (run->log, "open %s ns=%s\n", s, ns ? ns : "-");
  if (run->pause_each)
    {
      myna_xml_stream_pause (run->stream);
      run->paused = TRUE;
    }
}

static void
on_stanza (gpointer user_data, MynaStanza *stanza)
{
  Run *run = user_data;

  g_string_append (run->log, "stanza ");
  myna_stanza_serialize (stanza, myna_xml_stream_get_default_ns (run->stream),
                         run->log);
  g_string_append_c (run->log, '\n');
  if (run->reset_on != NULL
      && strcmp (myna_stanza_get_name (stanza), run->reset_on) == 0)
    myna_xml_stream_reset (run->stream);
  if (run->pause_each)
    {
      myna_xml_stream_pause (run->stream);
      run->paused = TRUE;
    }
  if (run->release_in_cb)
    myna_xml_stream_release_idle (run->stream);
}

static void
on_close (gpointer user_data)
{
  Run *run = user_data;

  g_string_append (run->log, "close\n");
}

static void
on_error (gpointer user_data, const char *condition, const char *text)
{
  Run *run = user_data;

  g_assert_nonnull (text);
  g_string_append_printf (run->log, "error %s\n", condition);
}

static const MynaXmlStreamCallbacks callbacks = {
  on_open, on_stanza, on_close, on_error,
};

/* Feeds @input cut at @cuts (ascending offsets) and returns the log.
 * After the stream ends, every further feed must return FALSE silently. */
static char *
run_cuts (const Run *options, const char *input, gsize len,
          const gsize *cuts, gsize n_cuts)
{
  Run run = *options;
  gsize start = 0;
  gboolean alive = TRUE;

  run.log = g_string_new (NULL);
  run.stream = myna_xml_stream_new (&callbacks, &run);
  if (run.limits.max_stanza_size || run.limits.max_depth
      || run.limits.max_attrs)
    myna_xml_stream_set_limits (run.stream, &run.limits);

  for (gsize c = 0; c <= n_cuts; c++)
    {
      gsize end = c < n_cuts ? cuts[c] : len;
      gsize pos = start;

      while (pos < end || (pos == end && end == start))
        {
          gsize consumed = 99999;
          gsize before = run.log->len;
          gboolean ok;

          run.paused = FALSE;
          ok = myna_xml_stream_feed (run.stream, input + pos, end - pos,
                                     &consumed);
          g_assert_cmpuint (consumed, <=, end - pos);
          if (!alive)
            {
              g_assert_false (ok);
              g_assert_cmpuint (run.log->len, ==, before);
              break;
            }
          pos += consumed;
          if (run.paused && ok)
            g_string_append_printf (run.log, "@%" G_GSIZE_FORMAT "\n", pos);
          if (run.release_between)
            myna_xml_stream_release_idle (run.stream);
          if (!ok)
            {
              alive = FALSE;
              break;
            }
          if (!run.paused)
            g_assert_cmpuint (pos, ==, end);
          if (end == start)
            break;
        }
      start = end;
    }
  myna_xml_stream_free (run.stream);
  return g_string_free (run.log, FALSE);
}

static char *
run_whole (const Run *options, const char *input, gsize len)
{
  return run_cuts (options, input, len, NULL, 0);
}

static char *
run_bytes (const Run *options, const char *input, gsize len)
{
  g_autofree gsize *cuts = g_new (gsize, len + 1);

  for (gsize i = 0; i < len; i++)
    cuts[i] = i + 1;
  return run_cuts (options, input, len, cuts, len > 0 ? len - 1 : 0);
}

/* Checks that @input gives @expected however it is split. */
static void
check_len (const Run *options, const char *input, gsize len,
           const char *expected)
{
  g_autofree char *whole = run_whole (options, input, len);
  Run released = *options;

  g_assert_cmpstr (whole, ==, expected);
  for (gsize i = 0; i <= len; i++)
    {
      g_autofree char *split = run_cuts (options, input, len, &i, 1);

      if (g_strcmp0 (split, expected) != 0)
        g_error ("split at %" G_GSIZE_FORMAT ": got\n%s\nexpected\n%s",
                 i, split, expected);
    }
  {
    g_autofree char *bytes = run_bytes (options, input, len);

    g_assert_cmpstr (bytes, ==, expected);
  }
  released.release_between = TRUE;
  {
    g_autofree char *bytes = run_bytes (&released, input, len);

    g_assert_cmpstr (bytes, ==, expected);
  }
}

static void
check (const Run *options, const char *input, const char *expected)
{
  check_len (options, input, strlen (input), expected);
}

static const Run plain = { 0 };

/* ------------------------------------------------------------------ */

static void
test_client_stream (void)
{
  check (&plain,
         STREAM_HEADER
         "<message to='b@example.com' type='chat' id='m1'>"
         "<body>Hello, world</body></message>"
         "<iq type='get' id='i1'><query xmlns='jabber:iq:roster'/></iq>"
         "<presence/>"
         "</stream:stream>",
         OPEN_EVENT
         "stanza <message to='b@example.com' type='chat' id='m1'>"
         "<body>Hello, world</body></message>\n"
         "stanza <iq type='get' id='i1'><query xmlns='jabber:iq:roster'/></iq>\n"
         "stanza <presence/>\n"
         "close\n");
}

static void
test_empty_stream (void)
{
  check (&plain,
         "<stream:stream xmlns='jabber:client'"
         " xmlns:stream='http://etherx.jabber.org/streams'/>",
         "open <stream xmlns='http://etherx.jabber.org/streams'/>"
         " ns=jabber:client\nclose\n");
}

static void
test_header_attributes (void)
{
  g_autoptr(GString) log = g_string_new (NULL);
  MynaXmlStream *stream;
  Run run = { 0 };
  const char *input = STREAM_HEADER;

  run.log = log;
  run.stream = stream = myna_xml_stream_new (&callbacks, &run);
  g_assert_null (myna_xml_stream_get_default_ns (stream));
  g_assert_true (myna_xml_stream_feed (stream, input, strlen (input), NULL));
  g_assert_cmpstr (myna_xml_stream_get_default_ns (stream), ==,
                   "jabber:client");
  g_assert_cmpstr (log->str, ==, OPEN_EVENT);
  myna_xml_stream_free (stream);
}

static void
test_xml_lang (void)
{
  check (&plain,
         STREAM_HEADER
         "<message xml:lang='de'><body>Hallo</body></message>",
         OPEN_EVENT
         "stanza <message xml:lang='de'><body>Hallo</body></message>\n");
}

static void
test_whitespace_keepalive (void)
{
  check (&plain,
         "  \n" STREAM_HEADER " \n\t \r\n"
         "<presence/>\n \n<presence type='unavailable'/>   \n\n",
         OPEN_EVENT
         "stanza <presence/>\n"
         "stanza <presence type='unavailable'/>\n");
}

static void
test_text_between_stanzas (void)
{
  check (&plain, STREAM_HEADER "<presence/> hello <presence/>",
         OPEN_EVENT "stanza <presence/>\nerror bad-format\n");
  check (&plain, STREAM_HEADER "x",
         OPEN_EVENT);
}

static void
test_cdata (void)
{
  check (&plain,
         STREAM_HEADER
         "<message><body>a<![CDATA[<b>&amp;]]>c<![CDATA[]]></body></message>",
         OPEN_EVENT
         "stanza <message><body>a&lt;b&gt;&amp;amp;c</body></message>\n");
}

static void
test_char_refs (void)
{
  check (&plain,
         STREAM_HEADER
         "<message id='&#65;&#x42;&amp;&lt;&gt;&quot;&apos;&#10;'>"
         "<body>&#65;&#x42;&#x20AC;&#128512;&amp;&lt;&gt;&quot;&apos;</body>"
         "</message>",
         OPEN_EVENT
         "stanza <message id='AB&amp;&lt;&gt;&quot;&apos;&#10;'>"
         "<body>AB\xe2\x82\xac\xf0\x9f\x98\x80&amp;&lt;&gt;\"'</body>"
         "</message>\n");
  check (&plain, STREAM_HEADER "<message><body>&#0;</body></message>",
         OPEN_EVENT "error not-well-formed\n");
  check (&plain, STREAM_HEADER "<message><body>&#xD800;</body></message>",
         OPEN_EVENT "error not-well-formed\n");
}

static void
test_utf8 (void)
{
  check (&plain,
         STREAM_HEADER
         "<message to='\xd0\xb6@\xe4\xb8\xad.example'>"
         "<body>\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 \xd0\x9f\xd1\x80\xd0\xb8"
         "</body></message>",
         OPEN_EVENT
         "stanza <message to='\xd0\xb6@\xe4\xb8\xad.example'>"
         "<body>\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 \xd0\x9f\xd1\x80\xd0\xb8"
         "</body></message>\n");
}

static void
test_invalid_utf8 (void)
{
  const char *bad[] = {
    "\xff", "\xc0\xaf", "\xc1\x8c", "\xe0\x81\x8c", "\xf0\x80\x81\x8c",
    "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xef\xbf\xbe", "\xe2\x82",
    "\x80", "\x01",
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *in_cdata = g_strdup_printf (
        STREAM_HEADER "<message><body><![CDATA[a%sb]]></body></message>"
        "<presence/>", bad[i]);
      g_autofree char *in_text = g_strdup_printf (
        STREAM_HEADER "<message><body>a%sb</body></message><presence/>",
        bad[i]);
      g_autofree char *in_attr = g_strdup_printf (
        STREAM_HEADER "<message id='a%sb'/><presence/>", bad[i]);

      check (&plain, in_text, OPEN_EVENT "error not-well-formed\n");
      check (&plain, in_attr, OPEN_EVENT "error not-well-formed\n");
      check (&plain, in_cdata, OPEN_EVENT "error not-well-formed\n");
    }
}

static void
test_namespaces (void)
{
  check (&plain,
         STREAM_HEADER
         "<message xmlns:foo='urn:foo' foo:bar='x'><foo:x/>"
         "<y xmlns=''><z/></y><q xmlns='a&amp;b'/></message>",
         OPEN_EVENT
         "stanza <message xmlns:ns1='urn:foo' ns1:bar='x'>"
         "<x xmlns='urn:foo'/><y xmlns=''><z/></y><q xmlns='a&amp;b'/>"
         "</message>\n");
}

/* The stanza callback of test_stanza_tree keeps the stanza. */
static void
keep_stanza (gpointer user_data, MynaStanza *stanza)
{
  MynaStanza **slot = user_data;

  g_clear_pointer (slot, myna_stanza_unref);
  *slot = myna_stanza_ref (stanza);
}

static void
test_stanza_tree (void)
{
  g_autoptr(MynaStanza) seen = NULL;
  MynaXmlStreamCallbacks cb = { .stanza = keep_stanza };
  MynaXmlStream *stream = myna_xml_stream_new (&cb, &seen);
  const char *input = STREAM_HEADER
    "<message xmlns:a='urn:a' a:x='1' x='2' xml:lang='fr'>"
    "<body>one &amp; two</body><a:thing/></message>";
  MynaStanza *body;

  g_assert_true (myna_xml_stream_feed (stream, input, strlen (input), NULL));
  myna_xml_stream_free (stream);
  g_assert_nonnull (seen);
  g_assert_cmpstr (myna_stanza_get_name (seen), ==, "message");
  g_assert_cmpstr (myna_stanza_get_ns (seen), ==, "jabber:client");
  g_assert_cmpstr (myna_stanza_get_attr_ns (seen, "urn:a", "x"), ==, "1");
  g_assert_cmpstr (myna_stanza_get_attr (seen, "x"), ==, "2");
  g_assert_cmpstr (myna_stanza_get_attr_ns (seen, MYNA_NS_XML, "lang"), ==,
                   "fr");
  g_assert_cmpuint (myna_stanza_get_n_attrs (seen), ==, 3);
  body = myna_stanza_get_child (seen, "body", "jabber:client");
  g_assert_nonnull (body);
  g_assert_cmpstr (myna_stanza_get_text (body), ==, "one & two");
  g_assert_cmpuint (myna_stanza_get_n_children (body), ==, 1);
  g_assert_nonnull (myna_stanza_get_child (seen, "thing", "urn:a"));
}

/* ------------------------------------------------------------------ */
/* Restricted XML */

static void
test_dtd (void)
{
  check (&plain,
         "<?xml version='1.0'?><!DOCTYPE stream:stream>" STREAM_HEADER,
         "error restricted-xml\n");
  check (&plain,
         "<!DOCTYPE stream [<!ELEMENT stream ANY>]>" STREAM_HEADER,
         "error restricted-xml\n");
  check (&plain,
         "<!DOCTYPE stream SYSTEM 'http://example.com/x.dtd'>" STREAM_HEADER,
         "error restricted-xml\n");
}

static void
test_billion_laughs (void)
{
  check (&plain,
         "<?xml version='1.0'?>"
         "<!DOCTYPE lolz [<!ENTITY lol 'lol'>"
         "<!ENTITY lol1 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>"
         "<!ENTITY lol2 '&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;'>"
         "<!ENTITY lol3 '&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;'>"
         "]>"
         "<stream:stream xmlns='jabber:client'"
         " xmlns:stream='http://etherx.jabber.org/streams'>"
         "<message><body>&lol3;</body></message>",
         "error restricted-xml\n");
}

static void
test_external_entity (void)
{
  check (&plain,
         "<?xml version='1.0'?>"
         "<!DOCTYPE foo [<!ENTITY xxe SYSTEM 'file:///etc/passwd'>]>"
         STREAM_HEADER "<message><body>&xxe;</body></message>",
         "error restricted-xml\n");
  check (&plain, STREAM_HEADER "<message><body>&xxe;</body></message>",
         OPEN_EVENT "error restricted-xml\n");
}

static void
test_custom_entity (void)
{
  check (&plain, STREAM_HEADER "<message><body>a&foo;b</body></message>",
         OPEN_EVENT "error restricted-xml\n");
  check (&plain, STREAM_HEADER "<message id='a&foo;b'/>",
         OPEN_EVENT "error restricted-xml\n");
  check (&plain, STREAM_HEADER "<message><body>&nbsp;</body></message>",
         OPEN_EVENT "error restricted-xml\n");
}

static void
test_comment (void)
{
  check (&plain, "<!-- hi -->" STREAM_HEADER, "error restricted-xml\n");
  check (&plain, STREAM_HEADER "<!-- hi --><presence/>",
         OPEN_EVENT "error restricted-xml\n");
  check (&plain, STREAM_HEADER "<presence><!-- hi --></presence>",
         OPEN_EVENT "error restricted-xml\n");
}

static void
test_processing_instruction (void)
{
  check (&plain, "<?foo bar?>" STREAM_HEADER, "error restricted-xml\n");
  check (&plain, STREAM_HEADER "<?foo bar?><presence/>",
         OPEN_EVENT "error restricted-xml\n");
  check (&plain, STREAM_HEADER "<presence><?foo?></presence>",
         OPEN_EVENT "error restricted-xml\n");
  /* An XML declaration anywhere but at the very start is malformed. */
  check (&plain, STREAM_HEADER "<?xml version='1.0'?><presence/>",
         OPEN_EVENT "error not-well-formed\n");
}

/* ------------------------------------------------------------------ */
/* Malformed input */

static void
test_unknown_prefix (void)
{
  check (&plain, STREAM_HEADER "<foo:bar/>",
         OPEN_EVENT "error not-well-formed\n");
  check (&plain, STREAM_HEADER "<message foo:bar='1'/>",
         OPEN_EVENT "error not-well-formed\n");
}

static void
test_mismatched_tags (void)
{
  check (&plain, STREAM_HEADER "<message><body></message></body>",
         OPEN_EVENT "error not-well-formed\n");
  check (&plain, STREAM_HEADER "<message></stream:stream>",
         OPEN_EVENT "error not-well-formed\n");
  check (&plain, STREAM_HEADER "<message a='1' a='2'/>",
         OPEN_EVENT "error not-well-formed\n");
  check (&plain, STREAM_HEADER "<message a=1/>",
         OPEN_EVENT "error not-well-formed\n");
  check (&plain, STREAM_HEADER "<message a='<'/><presence/>",
         OPEN_EVENT "error not-well-formed\n");
  check (&plain, STREAM_HEADER "<message>a & b;</message>",
         OPEN_EVENT "error not-well-formed\n");
  check (&plain, STREAM_HEADER "<>", OPEN_EVENT "error not-well-formed\n");
  check (&plain, "hello<stream:stream/>", "error not-well-formed\n");
}

static void
test_wrong_root (void)
{
  check (&plain,
         "<stream:stream xmlns='jabber:client' xmlns:stream='urn:wrong'>",
         "error invalid-namespace\n");
  check (&plain,
         "<stream xmlns='jabber:client'>", "error invalid-namespace\n");
  check (&plain,
         "<foo xmlns='http://etherx.jabber.org/streams'>",
         "error invalid-namespace\n");
}

/* ------------------------------------------------------------------ */
/* Limits */

static void
test_oversized_stanza (void)
{
  /* The header (151 bytes) must fit too. */
  Run small = { .limits = { .max_stanza_size = 160 } };
  g_autofree char *body = g_strnfill (160, 'x');
  g_autofree char *ok = g_strdup_printf (STREAM_HEADER
                                         "<message><body>%s</body></message>"
                                         "<presence/>",
                                         body + 40);
  g_autofree char *ok_event = g_strdup_printf (
    OPEN_EVENT "stanza <message><body>%s</body></message>\n"
    "stanza <presence/>\n", body + 40);
  g_autofree char *big = g_strdup_printf (STREAM_HEADER
                                          "<message><body>%s</body></message>"
                                          "<presence/>",
                                          body);
  g_autofree char *big_attr = g_strdup_printf (STREAM_HEADER
                                               "<message id='%s'/>", body);
  g_autofree char *big_header = g_strdup_printf (
    "<stream:stream xmlns='jabber:client'"
    " xmlns:stream='http://etherx.jabber.org/streams' to='%s'>", body + 70);

  g_assert_cmpuint (strlen (STREAM_HEADER), <=, 160);
  check (&small, ok, ok_event);
  check (&small, big, OPEN_EVENT "error policy-violation\n");
  check (&small, big_attr, OPEN_EVENT "error policy-violation\n");
  check (&small, big_header, "error policy-violation\n");
}

/* A huge element is refused as soon as the limit is passed, without
 * buffering what follows. */
static void
test_oversized_early (void)
{
  g_autoptr(GString) log = g_string_new (NULL);
  Run run = { .log = log };
  MynaXmlLimits limits = { .max_stanza_size = 1000 };
  gsize len = 1 << 20, consumed = 0, fed = 0;
  g_autofree char *junk = g_strnfill (len, 'x');
  const char *head = STREAM_HEADER "<message><body>";

  run.stream = myna_xml_stream_new (&callbacks, &run);
  myna_xml_stream_set_limits (run.stream, &limits);
  g_assert_true (myna_xml_stream_feed (run.stream, head, strlen (head), NULL));
  while (fed < len)
    {
      gsize chunk = MIN (len - fed, 333);

      if (!myna_xml_stream_feed (run.stream, junk + fed, chunk, &consumed))
        break;
      g_assert_cmpuint (myna_xml_stream_get_memory (run.stream), <, 64 * 1024);
      fed += chunk;
    }
  g_assert_cmpuint (fed, <, 1000);
  g_assert_cmpstr (log->str, ==, OPEN_EVENT "error policy-violation\n");
  myna_xml_stream_free (run.stream);

  /* Same in one call. */
  g_string_truncate (log, 0);
  run.stream = myna_xml_stream_new (&callbacks, &run);
  myna_xml_stream_set_limits (run.stream, &limits);
  g_assert_true (myna_xml_stream_feed (run.stream, head, strlen (head), NULL));
  g_assert_false (myna_xml_stream_feed (run.stream, junk, len, &consumed));
  g_assert_cmpuint (consumed, <, 1000);
  g_assert_cmpstr (log->str, ==, OPEN_EVENT "error policy-violation\n");
  myna_xml_stream_free (run.stream);
}

static void
test_too_deep (void)
{
  Run shallow = { .limits = { .max_depth = 3 } };

  check (&shallow, STREAM_HEADER "<a><b><c/></b></a>",
         OPEN_EVENT "stanza <a><b><c/></b></a>\n");
  check (&shallow, STREAM_HEADER "<a><b><c><d/></c></b></a>",
         OPEN_EVENT "error policy-violation\n");
}

static void
test_too_deep_default (void)
{
  GString *in = g_string_new (STREAM_HEADER);
  g_autofree char *input = NULL;

  for (guint i = 0; i < 5000; i++)
    g_string_append (in, "<a>");
  input = g_string_free (in, FALSE);
  {
    g_autofree char *log = run_whole (&plain, input, strlen (input));

    g_assert_cmpstr (log, ==, OPEN_EVENT "error policy-violation\n");
  }
}

static void
test_too_many_attrs (void)
{
  Run few = { .limits = { .max_attrs = 3 } };

  check (&few, STREAM_HEADER "<a x='1' y='2' z='3' xmlns:q='urn:q'/>",
         OPEN_EVENT "stanza <a x='1' y='2' z='3'/>\n");
  check (&few, STREAM_HEADER "<a><b w='0' x='1' y='2' z='3'/></a>",
         OPEN_EVENT "error policy-violation\n");
  check (&few,
         "<stream:stream xmlns='jabber:client'"
         " xmlns:stream='http://etherx.jabber.org/streams'"
         " a='1' b='2' c='3' d='4'>",
         "error policy-violation\n");
}

static void
test_many_attrs_fast (void)
{
  GString *in = g_string_new (STREAM_HEADER "<message");
  g_autofree char *input = NULL;
  gint64 start;

  for (guint i = 0; i < 40000; i++)
    g_string_append_printf (in, " a%u=''", i);
  g_string_append (in, "/>");
  input = g_string_free (in, FALSE);
  start = g_get_monotonic_time ();
  {
    Run big = { .limits = { .max_stanza_size = 1 << 20 } };
    g_autofree char *log = run_whole (&big, input, strlen (input));

    g_assert_cmpstr (log, ==, OPEN_EVENT "error policy-violation\n");
  }
  g_test_message ("40000 attributes refused in %" G_GINT64_FORMAT " us",
                  g_get_monotonic_time () - start);
}

/* ------------------------------------------------------------------ */
/* Restart, pause, release */

#define RESTART_INPUT \
  STREAM_HEADER \
  "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>" \
  "<?xml version='1.0'?>" \
  "<stream:stream xmlns='jabber:client'" \
  " xmlns:stream='http://etherx.jabber.org/streams' to='example.com'" \
  " version='1.0' xml:lang='en'>" \
  "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>"
#define RESTART_EVENTS \
  OPEN_EVENT \
  "stanza <auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" \
  "AGEAYg==</auth>\n" \
  OPEN_EVENT \
  "stanza <iq type='set' id='b'>" \
  "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>\n"

static void
test_restart_pipelined (void)
{
  Run restart = { .reset_on = "auth" };

  check (&restart, RESTART_INPUT, RESTART_EVENTS);
  /* Without the reset the second header is an error. */
  check (&plain, RESTART_INPUT,
         OPEN_EVENT
         "stanza <auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'"
         " mechanism='PLAIN'>AGEAYg==</auth>\n"
         "error not-well-formed\n");
}

static void
test_restart_later (void)
{
  g_autoptr(GString) log = g_string_new (NULL);
  Run run = { .reset_on = "starttls", .log = log };
  const char *first = STREAM_HEADER
    "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
  const char *second = "\n" STREAM_HEADER "<presence/>";

  run.stream = myna_xml_stream_new (&callbacks, &run);
  g_assert_true (myna_xml_stream_feed (run.stream, first, strlen (first),
                                       NULL));
  g_assert_null (myna_xml_stream_get_default_ns (run.stream));
  g_assert_true (myna_xml_stream_feed (run.stream, second, strlen (second),
                                       NULL));
  g_assert_cmpstr (log->str, ==,
                   OPEN_EVENT
                   "stanza <starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\n"
                   OPEN_EVENT "stanza <presence/>\n");
  /* A reset outside of any callback works too. */
  myna_xml_stream_reset (run.stream);
  g_string_truncate (log, 0);
  g_assert_true (myna_xml_stream_feed (run.stream, second, strlen (second),
                                       NULL));
  g_assert_cmpstr (log->str, ==, OPEN_EVENT "stanza <presence/>\n");
  myna_xml_stream_free (run.stream);
}

static void
test_pause (void)
{
  Run pause = { .pause_each = TRUE };
  const char *input =
    STREAM_HEADER "<presence/>  <message><body>x</body></message><iq/>";
  gsize header = strlen (STREAM_HEADER);
  g_autofree char *expected = g_strdup_printf (
    OPEN_EVENT "@%" G_GSIZE_FORMAT "\n"
    "stanza <presence/>\n@%" G_GSIZE_FORMAT "\n"
    "stanza <message><body>x</body></message>\n@%" G_GSIZE_FORMAT "\n"
    "stanza <iq/>\n@%" G_GSIZE_FORMAT "\n",
    header, header + 11, header + 46, header + 51);

  g_assert_cmpuint (strlen (input), ==, header + 51);
  check (&pause, input, expected);
}

static void
test_release_idle (void)
{
  Run release = { .release_in_cb = TRUE };
  const char *input = STREAM_HEADER
    "<presence/><message><body>a</body></message> <iq type='get'/>"
    "</stream:stream>";
  const char *expected = OPEN_EVENT
    "stanza <presence/>\n"
    "stanza <message><body>a</body></message>\n"
    "stanza <iq type='get'/>\n"
    "close\n";

  check (&release, input, expected);
  check (&plain, input, expected);
}

static void
test_release_prefix (void)
{
  Run release = { .release_in_cb = TRUE };

  /* Another stream prefix, and a prefix declared on the header that the
   * stanzas use (dialback). */
  check (&release,
         "<s:stream xmlns:s='http://etherx.jabber.org/streams'"
         " xmlns='jabber:server' xmlns:db='jabber:server:dialback'"
         " to='a.example' from='b.example' version='1.0'>"
         "<db:result to='a.example' from='b.example'>key</db:result>"
         "<message to='x@a.example'/><db:verify id='1'/></s:stream>",
         "open <stream xmlns='http://etherx.jabber.org/streams'"
         " to='a.example' from='b.example' version='1.0'/> ns=jabber:server\n"
         "stanza <result xmlns='jabber:server:dialback' to='a.example'"
         " from='b.example'>key</result>\n"
         "stanza <message to='x@a.example'/>\n"
         "stanza <verify xmlns='jabber:server:dialback' id='1'/>\n"
         "close\n");
  /* The streams namespace as the default one. */
  check (&release,
         "<stream xmlns='http://etherx.jabber.org/streams'><x/><y/></stream>",
         "open <stream xmlns='http://etherx.jabber.org/streams'/>"
         " ns=http://etherx.jabber.org/streams\n"
         "stanza <x/>\nstanza <y/>\nclose\n");
  /* No default namespace at all. */
  check (&release,
         "<s:stream xmlns:s='http://etherx.jabber.org/streams'>"
         "<x/><y xmlns='urn:y'/><z/></s:stream>",
         "open <stream xmlns='http://etherx.jabber.org/streams'/> ns=-\n"
         "stanza <x/>\nstanza <y xmlns='urn:y'/>\nstanza <z/>\nclose\n");
}

static void
test_release_memory (void)
{
  g_autoptr(GString) log = g_string_new (NULL);
  Run run = { .log = log };
  const char *input = STREAM_HEADER "<presence/>";
  const char *more = "<presence type='unavailable'/>";
  gsize busy, idle;

  run.stream = myna_xml_stream_new (&callbacks, &run);
  g_assert_true (myna_xml_stream_feed (run.stream, input, strlen (input),
                                       NULL));
  busy = myna_xml_stream_get_memory (run.stream);
  myna_xml_stream_release_idle (run.stream);
  idle = myna_xml_stream_get_memory (run.stream);
  g_test_message ("memory: %" G_GSIZE_FORMAT " busy, %" G_GSIZE_FORMAT " idle",
                  busy, idle);
  g_assert_cmpuint (idle, <, 1024);
  g_assert_cmpuint (busy, >, idle + 4096);
  /* Releasing mid-element does nothing. */
  g_assert_true (myna_xml_stream_feed (run.stream, more, 5, NULL));
  myna_xml_stream_release_idle (run.stream);
  g_assert_true (myna_xml_stream_feed (run.stream, more + 5,
                                       strlen (more) - 5, NULL));
  g_assert_cmpstr (log->str, ==, OPEN_EVENT "stanza <presence/>\n"
                   "stanza <presence type='unavailable'/>\n");
  myna_xml_stream_free (run.stream);
}

/* A reset stream keeps its libxml2 context for the next header: it
 * counts in the memory figure, and release_idle() frees it when no header
 * came (the server's sweep of idle sessions). */
static void
test_release_after_reset (void)
{
  g_autoptr(GString) log = g_string_new (NULL);
  Run run = { .log = log };
  const char *input = STREAM_HEADER "<presence/>";
  gsize fresh, reset, idle;

  run.stream = myna_xml_stream_new (&callbacks, &run);
  fresh = myna_xml_stream_get_memory (run.stream);
  g_assert_true (myna_xml_stream_feed (run.stream, input, strlen (input), NULL));
  myna_xml_stream_reset (run.stream);
  reset = myna_xml_stream_get_memory (run.stream);
  myna_xml_stream_release_idle (run.stream);
  idle = myna_xml_stream_get_memory (run.stream);
  g_test_message ("memory: %" G_GSIZE_FORMAT " fresh, %" G_GSIZE_FORMAT
                  " after reset, %" G_GSIZE_FORMAT " released", fresh, reset, idle);
  g_assert_cmpuint (reset, >, fresh + 4096);
  g_assert_cmpuint (idle, ==, fresh);
  /* The next stream parses as the first did, with or without the spare. */
  g_assert_true (myna_xml_stream_feed (run.stream, input, strlen (input), NULL));
  myna_xml_stream_reset (run.stream);
  g_assert_true (myna_xml_stream_feed (run.stream, input, strlen (input), NULL));
  g_assert_cmpstr (log->str, ==, OPEN_EVENT "stanza <presence/>\n"
                   OPEN_EVENT "stanza <presence/>\n"
                   OPEN_EVENT "stanza <presence/>\n");
  myna_xml_stream_free (run.stream);
}

static void
test_after_close (void)
{
  g_autoptr(GString) log = g_string_new (NULL);
  Run run = { .log = log };
  const char *input = STREAM_HEADER "</stream:stream><presence/>";
  gsize consumed = 0;

  run.stream = myna_xml_stream_new (&callbacks, &run);
  g_assert_false (myna_xml_stream_feed (run.stream, input, strlen (input),
                                        &consumed));
  g_assert_cmpuint (consumed, ==, strlen (input) - strlen ("<presence/>"));
  g_assert_false (myna_xml_stream_feed (run.stream, "<a/>", 4, &consumed));
  g_assert_cmpuint (consumed, ==, 0);
  g_assert_cmpstr (log->str, ==, OPEN_EVENT "close\n");
  myna_xml_stream_free (run.stream);
}

static void
test_limits_api (void)
{
  MynaXmlStream *stream = myna_xml_stream_new (&callbacks, NULL);
  MynaXmlLimits in = { 1234, 5, 6 }, out = { 0 };

  myna_xml_stream_set_limits (stream, &in);
  myna_xml_stream_get_limits (stream, &out);
  g_assert_cmpuint (out.max_stanza_size, ==, 1234);
  g_assert_cmpuint (out.max_depth, ==, 5);
  g_assert_cmpuint (out.max_attrs, ==, 6);
  myna_xml_stream_free (stream);
}

/* A typical message stanza should parse in a few microseconds. */
static void
test_speed (void)
{
  g_autoptr(GString) in = g_string_new (STREAM_HEADER);
  MynaXmlStreamCallbacks cb = { 0 };
  MynaXmlStream *stream = myna_xml_stream_new (&cb, NULL);
  const char *msg =
    "<message to='juliet@example.com/balcony' from='romeo@example.net/orchard'"
    " type='chat' id='ktx72v49' xml:lang='en'><body>Art thou not Romeo,"
    " and a Montague?</body><active xmlns='http://jabber.org/protocol/"
    "chatstates'/></message>";
  guint n = g_test_perf () ? 200000 : 20000;
  gint64 start;
  double us;

  for (guint i = 0; i < 100; i++)
    g_string_append (in, msg);
  start = g_get_monotonic_time ();
  g_assert_true (myna_xml_stream_feed (stream, in->str, in->len, NULL));
  for (guint i = 0; i < n / 100; i++)
    g_assert_true (myna_xml_stream_feed (stream, in->str + strlen (STREAM_HEADER),
                                         in->len - strlen (STREAM_HEADER),
                                         NULL));
  us = (double) (g_get_monotonic_time () - start) / (n + 100);
  g_test_message ("%zu-byte message: %.2f us each", strlen (msg), us);
  myna_xml_stream_free (stream);
}

/* myna_stanza_parse: one stored element back into a tree. */
static void
test_parse_one (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MynaStanza) m = myna_stanza_parse ("<message to='a@b'><body>hi &amp; bye</body></message>",
                                               -1, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (myna_stanza_get_name (m), ==, "message");
  g_assert_cmpstr (myna_stanza_get_ns (m), ==, MYNA_NS_CLIENT);
  g_assert_cmpstr (myna_stanza_get_child_text (m, "body"), ==, "hi & bye");

  g_autoptr(MynaStanza) v = myna_stanza_parse ("<vCard xmlns='vcard-temp'><FN>X</FN></vCard>", -1, NULL);
  g_assert_cmpstr (myna_stanza_get_ns (v), ==, "vcard-temp");

  g_assert_null (myna_stanza_parse ("<a><b></a>", -1, &error));
  g_assert_error (error, G_MARKUP_ERROR, G_MARKUP_ERROR_PARSE);
  g_clear_error (&error);
  g_assert_null (myna_stanza_parse ("<a/><b/>", -1, &error));
  g_assert_nonnull (strstr (error->message, "more than one"));
  g_clear_error (&error);
  g_assert_null (myna_stanza_parse ("<a>", -1, &error));
  g_clear_error (&error);
  g_assert_null (myna_stanza_parse ("<!-- x --><a/>", -1, &error));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/xmlstream/client-stream", test_client_stream);
  g_test_add_func ("/xmlstream/empty-stream", test_empty_stream);
  g_test_add_func ("/xmlstream/header-attributes", test_header_attributes);
  g_test_add_func ("/xmlstream/xml-lang", test_xml_lang);
  g_test_add_func ("/xmlstream/whitespace-keepalive", test_whitespace_keepalive);
  g_test_add_func ("/xmlstream/text-between-stanzas", test_text_between_stanzas);
  g_test_add_func ("/xmlstream/cdata", test_cdata);
  g_test_add_func ("/xmlstream/char-refs", test_char_refs);
  g_test_add_func ("/xmlstream/utf8", test_utf8);
  g_test_add_func ("/xmlstream/invalid-utf8", test_invalid_utf8);
  g_test_add_func ("/xmlstream/namespaces", test_namespaces);
  g_test_add_func ("/xmlstream/stanza-tree", test_stanza_tree);
  g_test_add_func ("/xmlstream/restricted/dtd", test_dtd);
  g_test_add_func ("/xmlstream/restricted/billion-laughs", test_billion_laughs);
  g_test_add_func ("/xmlstream/restricted/external-entity",
                   test_external_entity);
  g_test_add_func ("/xmlstream/restricted/custom-entity", test_custom_entity);
  g_test_add_func ("/xmlstream/restricted/comment", test_comment);
  g_test_add_func ("/xmlstream/restricted/pi", test_processing_instruction);
  g_test_add_func ("/xmlstream/malformed/unknown-prefix", test_unknown_prefix);
  g_test_add_func ("/xmlstream/malformed/mismatched", test_mismatched_tags);
  g_test_add_func ("/xmlstream/malformed/wrong-root", test_wrong_root);
  g_test_add_func ("/xmlstream/limits/oversized", test_oversized_stanza);
  g_test_add_func ("/xmlstream/limits/oversized-early", test_oversized_early);
  g_test_add_func ("/xmlstream/limits/too-deep", test_too_deep);
  g_test_add_func ("/xmlstream/limits/too-deep-default", test_too_deep_default);
  g_test_add_func ("/xmlstream/limits/too-many-attrs", test_too_many_attrs);
  g_test_add_func ("/xmlstream/limits/many-attrs-fast", test_many_attrs_fast);
  g_test_add_func ("/xmlstream/limits/api", test_limits_api);
  g_test_add_func ("/xmlstream/restart/pipelined", test_restart_pipelined);
  g_test_add_func ("/xmlstream/restart/later", test_restart_later);
  g_test_add_func ("/xmlstream/pause", test_pause);
  g_test_add_func ("/xmlstream/release-idle/basic", test_release_idle);
  g_test_add_func ("/xmlstream/release-idle/prefix", test_release_prefix);
  g_test_add_func ("/xmlstream/release-idle/memory", test_release_memory);
  g_test_add_func ("/xmlstream/release-idle/after-reset", test_release_after_reset);
  g_test_add_func ("/xmlstream/after-close", test_after_close);
  g_test_add_func ("/xmlstream/speed", test_speed);
  g_test_add_func ("/xmlstream/parse-one", test_parse_one);

  return g_test_run ();
}
