/* test-stanza.c: unit tests for MynaStanza: building, attributes,
 * children, copying, serialization and escaping, and reply shapes. */
#include <myna/stanza.h>
#include <myna/xmlstream.h>

#include <string.h>

static void
assert_xml (const MynaStanza *stanza, const char *parent_ns,
            const char *expected)
{
  g_autoptr(GString) out = g_string_new (NULL);

  myna_stanza_serialize (stanza, parent_ns, out);
  g_assert_cmpstr (out->str, ==, expected);
}

/* Parses @xml as the one stanza of a jabber:client stream. */
static void
keep_stanza (gpointer user_data, MynaStanza *stanza)
{
  MynaStanza **slot = user_data;

  g_assert_null (*slot);
  *slot = myna_stanza_ref (stanza);
}

static void
fail_on_error (gpointer user_data, const char *condition, const char *text)
{
  g_error ("stream error %s: %s", condition, text);
}

static MynaStanza *
parse (const char *xml)
{
  static const char header[] =
    "<stream:stream xmlns='jabber:client'"
    " xmlns:stream='http://etherx.jabber.org/streams'>";
  MynaXmlStreamCallbacks cb = { .stanza = keep_stanza, .error = fail_on_error };
  MynaStanza *stanza = NULL;
  MynaXmlStream *stream = myna_xml_stream_new (&cb, &stanza);

  g_assert_true (myna_xml_stream_feed (stream, header, strlen (header), NULL));
  g_assert_true (myna_xml_stream_feed (stream, xml, strlen (xml), NULL));
  myna_xml_stream_free (stream);
  g_assert_nonnull (stanza);
  return stanza;
}

/* ------------------------------------------------------------------ */

static void
test_build (void)
{
  g_autoptr(MynaStanza) msg = myna_stanza_new ("message", MYNA_NS_CLIENT);
  MynaStanza *body;

  myna_stanza_set_attr (msg, "to", "juliet@example.com");
  myna_stanza_set_attr (msg, "type", "chat");
  myna_stanza_set_attr (msg, "id", "m1");
  body = myna_stanza_add_text_child (msg, "body", "Hi!");
  myna_stanza_add_child (msg, "active", "http://jabber.org/protocol/chatstates");

  g_assert_false (myna_stanza_is_text (msg));
  g_assert_cmpstr (myna_stanza_get_name (msg), ==, "message");
  g_assert_cmpstr (myna_stanza_get_ns (msg), ==, MYNA_NS_CLIENT);
  g_assert_cmpstr (myna_stanza_get_to (msg), ==, "juliet@example.com");
  g_assert_cmpstr (myna_stanza_get_type (msg), ==, "chat");
  g_assert_cmpstr (myna_stanza_get_id (msg), ==, "m1");
  g_assert_null (myna_stanza_get_from (msg));
  g_assert_cmpstr (myna_stanza_get_ns (body), ==, MYNA_NS_CLIENT);
  g_assert_cmpuint (myna_stanza_get_n_children (msg), ==, 2);
  g_assert_true (myna_stanza_get_child_nth (msg, 0) == body);
  g_assert_cmpstr (myna_stanza_get_child_text (msg, "body"), ==, "Hi!");
  g_assert_null (myna_stanza_get_child_text (msg, "subject"));
  g_assert_cmpstr (myna_stanza_get_text (msg), ==, "");
  g_assert_true (myna_stanza_first_element (msg) == body);

  assert_xml (msg, MYNA_NS_CLIENT,
              "<message to='juliet@example.com' type='chat' id='m1'>"
              "<body>Hi!</body>"
              "<active xmlns='http://jabber.org/protocol/chatstates'/>"
              "</message>");
  {
    g_autofree char *s = myna_stanza_to_string (msg);

    g_assert_cmpstr (s, ==,
                     "<message xmlns='jabber:client' to='juliet@example.com'"
                     " type='chat' id='m1'><body>Hi!</body>"
                     "<active xmlns='http://jabber.org/protocol/chatstates'/>"
                     "</message>");
  }
}

static void
test_text_node (void)
{
  g_autoptr(MynaStanza) text = myna_stanza_new_text ("a<b", -1);
  g_autoptr(MynaStanza) part = myna_stanza_new_text ("abcdef", 3);
  g_autoptr(MynaStanza) empty = myna_stanza_new_text (NULL, 0);

  g_assert_true (myna_stanza_is_text (text));
  g_assert_null (myna_stanza_get_name (text));
  g_assert_null (myna_stanza_get_ns (text));
  g_assert_cmpstr (myna_stanza_get_text (text), ==, "a<b");
  g_assert_cmpstr (myna_stanza_get_text (part), ==, "abc");
  g_assert_cmpstr (myna_stanza_get_text (empty), ==, "");
  g_assert_null (myna_stanza_get_attr (text, "x"));
  g_assert_cmpuint (myna_stanza_get_n_children (text), ==, 0);
  g_assert_null (myna_stanza_get_child (text, NULL, NULL));
  assert_xml (text, NULL, "a&lt;b");
}

static void
test_attributes (void)
{
  g_autoptr(MynaStanza) el = myna_stanza_new ("x", "urn:x");
  const char *ns, *name, *value;

  myna_stanza_set_attr (el, "a", "1");
  myna_stanza_set_attr (el, "b", "2");
  myna_stanza_set_attr_ns (el, MYNA_NS_XML, "lang", "en");
  myna_stanza_set_attr_ns (el, "urn:other", "a", "3");
  g_assert_cmpuint (myna_stanza_get_n_attrs (el), ==, 4);
  g_assert_cmpstr (myna_stanza_get_attr (el, "a"), ==, "1");
  g_assert_cmpstr (myna_stanza_get_attr_ns (el, NULL, "a"), ==, "1");
  g_assert_cmpstr (myna_stanza_get_attr_ns (el, "", "a"), ==, "1");
  g_assert_cmpstr (myna_stanza_get_attr_ns (el, "urn:other", "a"), ==, "3");
  g_assert_cmpstr (myna_stanza_get_attr_ns (el, MYNA_NS_XML, "lang"), ==, "en");
  g_assert_null (myna_stanza_get_attr (el, "lang"));
  g_assert_null (myna_stanza_get_attr_ns (el, "urn:none", "a"));

  myna_stanza_get_attr_nth (el, 2, &ns, &name, &value);
  g_assert_cmpstr (ns, ==, MYNA_NS_XML);
  g_assert_cmpstr (name, ==, "lang");
  g_assert_cmpstr (value, ==, "en");
  myna_stanza_get_attr_nth (el, 0, &ns, NULL, NULL);
  g_assert_null (ns);

  assert_xml (el, "urn:x",
              "<x a='1' b='2' xml:lang='en' xmlns:ns1='urn:other' ns1:a='3'/>");

  /* Replace, including with a value pointing into the old one. */
  myna_stanza_set_attr (el, "a", "one");
  g_assert_cmpstr (myna_stanza_get_attr (el, "a"), ==, "one");
  myna_stanza_set_attr (el, "a", myna_stanza_get_attr (el, "a") + 1);
  g_assert_cmpstr (myna_stanza_get_attr (el, "a"), ==, "ne");
  g_assert_cmpuint (myna_stanza_get_n_attrs (el), ==, 4);
  /* Remove. */
  myna_stanza_set_attr (el, "b", NULL);
  myna_stanza_set_attr (el, "missing", NULL);
  myna_stanza_set_attr_ns (el, "", "a", NULL);
  g_assert_cmpuint (myna_stanza_get_n_attrs (el), ==, 2);
  assert_xml (el, "urn:x", "<x xml:lang='en' xmlns:ns1='urn:other' ns1:a='3'/>");
  myna_stanza_set_attr_ns (el, MYNA_NS_XML, "lang", NULL);
  myna_stanza_set_attr_ns (el, "urn:other", "a", NULL);
  g_assert_cmpuint (myna_stanza_get_n_attrs (el), ==, 0);
  assert_xml (el, "urn:x", "<x/>");

  /* Many attributes, two in one foreign namespace. */
  for (guint i = 0; i < 40; i++)
    {
      g_autofree char *n = g_strdup_printf ("attr%u", i);

      myna_stanza_set_attr (el, n, n);
    }
  myna_stanza_set_attr_ns (el, "urn:q", "p", "1");
  myna_stanza_set_attr_ns (el, "urn:q", "r", "2");
  g_assert_cmpuint (myna_stanza_get_n_attrs (el), ==, 42);
  for (guint i = 0; i < 40; i += 2)
    {
      g_autofree char *n = g_strdup_printf ("attr%u", i);

      myna_stanza_set_attr (el, n, NULL);
    }
  g_assert_cmpuint (myna_stanza_get_n_attrs (el), ==, 22);
  g_assert_cmpstr (myna_stanza_get_attr (el, "attr39"), ==, "attr39");
  g_assert_null (myna_stanza_get_attr (el, "attr38"));
  {
    g_autoptr(MynaStanza) back = NULL;
    g_autoptr(GString) out = g_string_new (NULL);

    myna_stanza_serialize (el, MYNA_NS_CLIENT, out);
    back = parse (out->str);
    g_assert_cmpstr (myna_stanza_get_attr_ns (back, "urn:q", "p"), ==, "1");
    g_assert_cmpstr (myna_stanza_get_attr_ns (back, "urn:q", "r"), ==, "2");
    g_assert_cmpuint (myna_stanza_get_n_attrs (back), ==, 22);
  }
}

static void
test_namespaces (void)
{
  g_autoptr(MynaStanza) iq = myna_stanza_new ("iq", MYNA_NS_CLIENT);
  g_autoptr(MynaStanza) loose = myna_stanza_new ("loose", NULL);
  MynaStanza *query = myna_stanza_add_child (iq, "query", "jabber:iq:roster");
  MynaStanza *none;

  myna_stanza_add_child (query, "item", NULL);
  none = myna_stanza_add_child (query, "plain", "");
  myna_stanza_add_child (none, "inner", NULL);
  myna_stanza_append (query, loose);

  g_assert_cmpstr (myna_stanza_get_ns (myna_stanza_get_child (query, "item",
                                                              NULL)),
                   ==, "jabber:iq:roster");
  g_assert_cmpstr (myna_stanza_get_ns (none), ==, "");
  g_assert_null (myna_stanza_get_ns (loose));
  /* A child without a namespace matches its parent's. */
  g_assert_true (myna_stanza_get_child (query, "loose", "jabber:iq:roster")
                 == loose);
  assert_xml (iq, MYNA_NS_CLIENT,
              "<iq><query xmlns='jabber:iq:roster'><item/>"
              "<plain xmlns=''><inner/></plain><loose/></query></iq>");
  assert_xml (iq, MYNA_NS_SERVER,
              "<iq xmlns='jabber:client'><query xmlns='jabber:iq:roster'><item/>"
              "<plain xmlns=''><inner/></plain><loose/></query></iq>");
  /* "" needs no declaration where no namespace is in scope. */
  assert_xml (none, NULL, "<plain><inner/></plain>");
  assert_xml (none, "", "<plain><inner/></plain>");
  assert_xml (loose, "urn:whatever", "<loose/>");
}

static void
test_escaping (void)
{
  g_autoptr(MynaStanza) el = myna_stanza_new ("body", MYNA_NS_CLIENT);
  g_autoptr(GString) out = g_string_new (NULL);

  myna_stanza_set_attr (el, "a", "<&>'\"\t\n\r");
  myna_stanza_append_text (el, "<&>'\"\t\n\r]]>", -1);
  assert_xml (el, MYNA_NS_CLIENT,
              "<body a='&lt;&amp;&gt;&apos;&quot;&#9;&#10;&#13;'>"
              "&lt;&amp;&gt;'\"\t\n&#13;]]&gt;</body>");

  myna_xml_escape_append (out, "a<b&c>d'e\"f\tg\nh\ri", -1);
  g_assert_cmpstr (out->str, ==,
                   "a&lt;b&amp;c&gt;d&apos;e&quot;f&#9;g&#10;h&#13;i");
  g_string_truncate (out, 0);
  myna_xml_escape_append (out, "abc&def", 4);
  g_assert_cmpstr (out->str, ==, "abc&amp;");
}

/* Characters that XML cannot carry become U+FFFD; valid UTF-8 is kept. */
static void
test_invalid_chars (void)
{
  static const struct {
    const char *in;
    gssize len;
    const char *out;
  } cases[] = {
    { "ok \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x7f\xc2\x85", -1,
      "ok \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x7f\xc2\x85" },
    { "a\x01" "b\x1f" "c", -1, "a\xef\xbf\xbd" "b\xef\xbf\xbd" "c" },
    { "nul\0x", 5, "nul\xef\xbf\xbdx" },
    { "\xff\xfe", -1, "\xef\xbf\xbd\xef\xbf\xbd" },
    { "\xc0\xaf", -1, "\xef\xbf\xbd\xef\xbf\xbd" },            /* overlong */
    { "\xe0\x80\xaf", -1, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
    { "\xed\xa0\x80", -1, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" }, /* surrogate */
    { "\xef\xbf\xbe!", -1, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd!" }, /* U+FFFE */
    { "\xef\xbf\xbf", -1, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" }, /* U+FFFF */
    { "\xf4\x90\x80\x80", -1,                                   /* > U+10FFFF */
      "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
    { "cut \xe2\x82", -1, "cut \xef\xbf\xbd\xef\xbf\xbd" },
    { "\xf0\x9f\x98", -1, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(MynaStanza) el = myna_stanza_new ("x", NULL);
      g_autoptr(GString) out = g_string_new (NULL);
      g_autoptr(GString) expected = g_string_new (NULL);
      g_autofree char *attr = NULL;

      myna_stanza_append_text (el, cases[i].in, cases[i].len);
      myna_stanza_serialize (el, NULL, out);
      g_string_printf (expected, "<x>%s</x>", cases[i].out);
      g_assert_cmpstr (out->str, ==, expected->str);
      g_assert_true (g_utf8_validate (out->str, -1, NULL));

      g_string_truncate (out, 0);
      myna_xml_escape_append (out, cases[i].in, cases[i].len);
      g_assert_cmpstr (out->str, ==, cases[i].out);

      /* What the serializer writes always parses back. */
      attr = g_strndup (cases[i].in, cases[i].len < 0 ? strlen (cases[i].in)
                                                      : (gsize) cases[i].len);
      myna_stanza_set_attr (el, "a", attr);
      g_string_truncate (out, 0);
      myna_stanza_serialize (el, MYNA_NS_CLIENT, out);
      {
        g_autoptr(MynaStanza) back = parse (out->str);
        g_autoptr(GString) again = g_string_new (NULL);

        myna_stanza_serialize (back, MYNA_NS_CLIENT, again);
        g_assert_cmpstr (again->str, ==, out->str);
      }
    }
}

static void
test_round_trip (void)
{
  static const char *const stanzas[] = {
    "<message to='a@b' id='1' xml:lang='en'><body>x &amp; y &lt; z</body>"
    "<html xmlns='http://jabber.org/protocol/xhtml-im'><body"
    " xmlns='http://www.w3.org/1999/xhtml'><p>one<br/>two</p></body></html>"
    "</message>",
    "<iq type='result' id='r'><query xmlns='jabber:iq:roster' ver='1'>"
    "<item jid='a@b' name='A &apos;B&apos; &quot;C&quot;'><group>G</group>"
    "</item></query></iq>",
    "<presence><x xmlns='urn:x' xmlns:y='urn:y' y:attr='v'><y:c/></x>"
    "<e xmlns=''><f/></e></presence>",
    "<message><body>tab\there\nnewline &#13; cr \xc3\xa9\xf0\x9f\x98\x80</body>"
    "</message>",
  };

  for (guint i = 0; i < G_N_ELEMENTS (stanzas); i++)
    {
      g_autoptr(MynaStanza) first = parse (stanzas[i]);
      g_autoptr(GString) a = g_string_new (NULL);
      g_autoptr(GString) b = g_string_new (NULL);
      g_autoptr(MynaStanza) second = NULL;
      g_autoptr(MynaStanza) copy = NULL;

      myna_stanza_serialize (first, MYNA_NS_CLIENT, a);
      second = parse (a->str);
      myna_stanza_serialize (second, MYNA_NS_CLIENT, b);
      g_assert_cmpstr (a->str, ==, b->str);

      copy = myna_stanza_copy (second);
      g_string_truncate (b, 0);
      myna_stanza_serialize (copy, MYNA_NS_CLIENT, b);
      g_assert_cmpstr (a->str, ==, b->str);
    }
}

static void
test_copy (void)
{
  g_autofree char *name = g_strdup_printf ("unusual-name-%d", g_random_int ());
  g_autoptr(MynaStanza) orig = myna_stanza_new (name, "urn:unusual:ns");
  g_autoptr(MynaStanza) copy = NULL;
  MynaStanza *child;

  myna_stanza_set_attr (orig, name, "v");
  myna_stanza_set_attr_ns (orig, "urn:attr:ns", name, "w");
  child = myna_stanza_add_text_child (orig, "child", "text");
  myna_stanza_add_child (child, name, NULL);

  copy = myna_stanza_copy (orig);
  g_assert_true (copy != orig);
  g_assert_cmpstr (myna_stanza_get_name (copy), ==, name);
  g_assert_cmpstr (myna_stanza_get_ns (copy), ==, "urn:unusual:ns");
  g_assert_cmpstr (myna_stanza_get_attr (copy, name), ==, "v");
  g_assert_cmpstr (myna_stanza_get_attr_ns (copy, "urn:attr:ns", name), ==, "w");
  g_assert_true (myna_stanza_get_child (copy, "child", NULL) != child);
  {
    g_autofree char *a = myna_stanza_to_string (orig);
    g_autofree char *b = myna_stanza_to_string (copy);

    g_assert_cmpstr (a, ==, b);
  }

  /* The copy is independent. */
  myna_stanza_set_attr (copy, name, "changed");
  myna_stanza_append_text (myna_stanza_get_child (copy, "child", NULL), "!", -1);
  g_assert_cmpstr (myna_stanza_get_attr (orig, name), ==, "v");
  g_assert_cmpstr (myna_stanza_get_child_text (orig, "child"), ==, "text");
  g_assert_cmpstr (myna_stanza_get_child_text (copy, "child"), ==, "text!");

  /* A text node copies too. */
  {
    g_autoptr(MynaStanza) t = myna_stanza_new_text ("abc", 3);
    g_autoptr(MynaStanza) tc = myna_stanza_copy (t);

    g_assert_true (myna_stanza_is_text (tc));
    g_assert_cmpstr (myna_stanza_get_text (tc), ==, "abc");
  }
}

/* Names are shared only when already interned; the lookup cache must
 * never confuse two strings that lived at the same address. */
static void
test_name_storage (void)
{
  char buf[32];
  g_autoptr(MynaStanza) a = NULL;
  g_autoptr(MynaStanza) b = NULL;

  strcpy (buf, "message");
  a = myna_stanza_new (buf, buf);
  myna_stanza_set_attr (a, buf, "1");
  strcpy (buf, "zz-not-interned");
  b = myna_stanza_new (buf, buf);
  myna_stanza_set_attr (b, buf, "2");
  strcpy (buf, "gone");
  g_assert_cmpstr (myna_stanza_get_name (a), ==, "message");
  g_assert_cmpstr (myna_stanza_get_ns (a), ==, "message");
  g_assert_cmpstr (myna_stanza_get_attr (a, "message"), ==, "1");
  g_assert_cmpstr (myna_stanza_get_name (b), ==, "zz-not-interned");
  g_assert_cmpstr (myna_stanza_get_ns (b), ==, "zz-not-interned");
  g_assert_cmpstr (myna_stanza_get_attr (b, "zz-not-interned"), ==, "2");
  /* Well-known names are shared. */
  g_assert_true (myna_stanza_get_name (a) == g_intern_string ("message"));
}

static void
test_text_merging (void)
{
  g_autoptr(MynaStanza) el = myna_stanza_new ("body", NULL);
  MynaStanza *first;

  myna_stanza_append_text (el, "Hello", -1);
  myna_stanza_append_text (el, ", ", 2);
  myna_stanza_append_text (el, "world!!!", 5);
  myna_stanza_append_text (el, "", 0);
  g_assert_cmpuint (myna_stanza_get_n_children (el), ==, 1);
  g_assert_cmpstr (myna_stanza_get_text (el), ==, "Hello, world");

  /* Appending a node's own text to itself. */
  first = myna_stanza_get_child_nth (el, 0);
  myna_stanza_append_text (el, myna_stanza_get_text (first), 5);
  g_assert_cmpstr (myna_stanza_get_text (el), ==, "Hello, worldHello");

  /* Text separated by an element is joined by get_text(). */
  myna_stanza_add_child (el, "br", NULL);
  myna_stanza_append_take (el, myna_stanza_new_text (" more", -1));
  myna_stanza_append_take (el, myna_stanza_new_text (" and more", -1));
  g_assert_cmpuint (myna_stanza_get_n_children (el), ==, 4);
  g_assert_cmpstr (myna_stanza_get_text (el), ==,
                   "Hello, worldHello more and more");
  /* The joined text follows changes. */
  myna_stanza_append_text (el, "!", 1);
  g_assert_cmpuint (myna_stanza_get_n_children (el), ==, 4);
  g_assert_cmpstr (myna_stanza_get_text (el), ==,
                   "Hello, worldHello more and more!");
  assert_xml (el, NULL, "<body>Hello, worldHello<br/> more and more!</body>");
}

/* A text node shared with someone else is not modified by merging. */
static void
test_text_shared (void)
{
  g_autoptr(MynaStanza) el = myna_stanza_new ("body", NULL);
  g_autoptr(MynaStanza) text = myna_stanza_new_text ("abc", -1);

  myna_stanza_append (el, text);
  myna_stanza_append_text (el, "def", -1);
  g_assert_cmpstr (myna_stanza_get_text (text), ==, "abc");
  g_assert_cmpstr (myna_stanza_get_text (el), ==, "abcdef");
}

static void
test_remove_children (void)
{
  g_autoptr(MynaStanza) msg = parse (
    "<message>a<body>1</body>b<x xmlns='urn:x'/>c<body xmlns='urn:y'/>d"
    "<thread>t</thread>e</message>");
  g_autoptr(MynaStanza) kept = NULL;

  kept = myna_stanza_ref (myna_stanza_get_child (msg, "thread", NULL));
  g_assert_cmpuint (myna_stanza_get_n_children (msg), ==, 9);
  g_assert_cmpuint (myna_stanza_remove_children (msg, "nothing", NULL), ==, 0);
  g_assert_cmpuint (myna_stanza_get_n_children (msg), ==, 9);

  /* By name and namespace: text left adjacent is merged. */
  g_assert_cmpuint (myna_stanza_remove_children (msg, "body", MYNA_NS_CLIENT),
                    ==, 1);
  g_assert_cmpuint (myna_stanza_get_n_children (msg), ==, 7);
  assert_xml (msg, MYNA_NS_CLIENT,
              "<message>ab<x xmlns='urn:x'/>c<body xmlns='urn:y'/>d"
              "<thread>t</thread>e</message>");
  /* By namespace only. */
  g_assert_cmpuint (myna_stanza_remove_children (msg, NULL, "urn:x"), ==, 1);
  assert_xml (msg, MYNA_NS_CLIENT,
              "<message>abc<body xmlns='urn:y'/>d<thread>t</thread>e</message>");
  /* By name only. */
  g_assert_cmpuint (myna_stanza_remove_children (msg, "body", NULL), ==, 1);
  g_assert_cmpuint (myna_stanza_get_n_children (msg), ==, 3);
  g_assert_cmpstr (myna_stanza_get_text (msg), ==, "abcde");
  /* Every element. */
  g_assert_cmpuint (myna_stanza_remove_children (msg, NULL, NULL), ==, 1);
  g_assert_cmpuint (myna_stanza_get_n_children (msg), ==, 1);
  assert_xml (msg, MYNA_NS_CLIENT, "<message>abcde</message>");
  /* A removed child someone holds stays alive. */
  g_assert_cmpstr (myna_stanza_get_text (kept), ==, "t");

  {
    g_autoptr(MynaStanza) only = myna_stanza_new ("x", NULL);

    myna_stanza_add_child (only, "a", NULL);
    myna_stanza_add_child (only, "b", NULL);
    g_assert_cmpuint (myna_stanza_remove_children (only, NULL, NULL), ==, 2);
    g_assert_cmpuint (myna_stanza_get_n_children (only), ==, 0);
    assert_xml (only, NULL, "<x/>");
    myna_stanza_add_child (only, "c", NULL);
    assert_xml (only, NULL, "<x><c/></x>");
  }
}

static void
test_get_child (void)
{
  g_autoptr(MynaStanza) msg = parse (
    "<message>text<a xmlns='urn:1'/><b/><a xmlns='urn:2'>two</a></message>");
  MynaStanza *a1 = myna_stanza_get_child_nth (msg, 1);
  MynaStanza *b = myna_stanza_get_child_nth (msg, 2);
  MynaStanza *a2 = myna_stanza_get_child_nth (msg, 3);

  g_assert_true (myna_stanza_first_element (msg) == a1);
  g_assert_true (myna_stanza_get_child (msg, "a", NULL) == a1);
  g_assert_true (myna_stanza_get_child (msg, "a", "urn:2") == a2);
  g_assert_true (myna_stanza_get_child (msg, NULL, MYNA_NS_CLIENT) == b);
  g_assert_true (myna_stanza_get_child (msg, "b", MYNA_NS_CLIENT) == b);
  g_assert_null (myna_stanza_get_child (msg, "b", "urn:1"));
  g_assert_null (myna_stanza_get_child (msg, "text", NULL));
  g_assert_cmpstr (myna_stanza_get_child_text (msg, "a"), ==, "");
  g_assert_cmpstr (myna_stanza_get_text (msg), ==, "text");
}

static void
test_refcount (void)
{
  MynaStanza *parent = myna_stanza_new ("p", NULL);
  MynaStanza *child = myna_stanza_new ("c", NULL);

  g_assert_true (myna_stanza_ref (child) == child);
  myna_stanza_append (parent, child);       /* parent takes a reference */
  myna_stanza_append_take (parent, child);  /* and steals one */
  g_assert_cmpuint (myna_stanza_get_n_children (parent), ==, 2);
  myna_stanza_unref (parent);
  /* One reference left: ours from new(). */
  g_assert_cmpstr (myna_stanza_get_name (child), ==, "c");
  myna_stanza_unref (child);
}

static void
test_iq_result (void)
{
  g_autoptr(MynaStanza) iq = parse (
    "<iq from='a@b/c' to='b' type='get' id='q1'><ping xmlns='urn:xmpp:ping'/>"
    "</iq>");
  g_autoptr(MynaStanza) result = myna_stanza_new_iq_result (iq);
  g_autoptr(MynaStanza) anon = myna_stanza_new ("iq", MYNA_NS_CLIENT);
  g_autoptr(MynaStanza) anon_result = NULL;

  assert_xml (result, MYNA_NS_CLIENT,
              "<iq id='q1' type='result' to='a@b/c' from='b'/>");
  g_assert_cmpstr (myna_stanza_get_ns (result), ==, MYNA_NS_CLIENT);
  myna_stanza_set_attr (anon, "type", "set");
  anon_result = myna_stanza_new_iq_result (anon);
  assert_xml (anon_result, MYNA_NS_CLIENT, "<iq type='result'/>");
}

static void
test_new_error (void)
{
  g_autoptr(MynaStanza) msg = parse (
    "<message from='romeo@example.net/orchard' to='juliet@example.com'"
    " type='chat' id='m1' xml:lang='en'><body>Hi</body></message>");
  g_autoptr(MynaStanza) err = NULL;
  g_autoptr(MynaStanza) presence = myna_stanza_new ("presence", MYNA_NS_SERVER);
  g_autoptr(MynaStanza) perr = NULL;
  MynaStanza *error;

  err = myna_stanza_new_error (msg, MYNA_ERROR_TYPE_CANCEL, "item-not-found",
                               "No such <user> & co");
  assert_xml (err, MYNA_NS_CLIENT,
              "<message id='m1' type='error' to='romeo@example.net/orchard'"
              " from='juliet@example.com'><error type='cancel'>"
              "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
              "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>"
              "No such &lt;user&gt; &amp; co</text></error></message>");
  error = myna_stanza_get_child (err, "error", MYNA_NS_CLIENT);
  g_assert_nonnull (error);
  g_assert_cmpstr (myna_stanza_get_type (error), ==, "cancel");
  g_assert_nonnull (myna_stanza_get_child (error, "item-not-found",
                                           MYNA_NS_STANZAS));
  g_assert_cmpstr (myna_stanza_get_text (myna_stanza_get_child (error, "text",
                                                                MYNA_NS_STANZAS)),
                   ==, "No such <user> & co");
  /* The payload is not copied. */
  g_assert_null (myna_stanza_get_child (err, "body", NULL));

  /* No text, another type, another namespace, no addresses. */
  perr = myna_stanza_new_error (presence, MYNA_ERROR_TYPE_WAIT,
                                "resource-constraint", NULL);
  assert_xml (perr, MYNA_NS_SERVER,
              "<presence type='error'><error type='wait'>"
              "<resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
              "</error></presence>");
  g_assert_cmpstr (myna_stanza_get_ns (perr), ==, MYNA_NS_SERVER);

  g_assert_cmpstr (myna_error_type_to_string (MYNA_ERROR_TYPE_AUTH), ==, "auth");
  g_assert_cmpstr (myna_error_type_to_string (MYNA_ERROR_TYPE_CANCEL), ==,
                   "cancel");
  g_assert_cmpstr (myna_error_type_to_string (MYNA_ERROR_TYPE_CONTINUE), ==,
                   "continue");
  g_assert_cmpstr (myna_error_type_to_string (MYNA_ERROR_TYPE_MODIFY), ==,
                   "modify");
  g_assert_cmpstr (myna_error_type_to_string (MYNA_ERROR_TYPE_WAIT), ==, "wait");
}

static void
test_misuse (void)
{
  g_autoptr(MynaStanza) el = myna_stanza_new ("x", NULL);

  g_test_expect_message ("myna", G_LOG_LEVEL_CRITICAL, "*name_is_valid*");
  g_assert_null (myna_stanza_new ("a b", NULL));
  g_test_assert_expected_messages ();

  g_test_expect_message ("myna", G_LOG_LEVEL_CRITICAL, "*name_is_valid*");
  g_assert_null (myna_stanza_new ("1x", NULL));
  g_test_assert_expected_messages ();

  g_test_expect_message ("myna", G_LOG_LEVEL_CRITICAL,
                         "*attr_name_is_valid*");
  myna_stanza_set_attr (el, "xmlns", "urn:x");
  g_test_assert_expected_messages ();

  g_test_expect_message ("myna", G_LOG_LEVEL_CRITICAL,
                         "*attr_name_is_valid*");
  myna_stanza_set_attr (el, "xml:lang", "en");
  g_test_assert_expected_messages ();
  g_assert_cmpuint (myna_stanza_get_n_attrs (el), ==, 0);
}

/* Rough cost of building and serializing a typical message. */
static void
test_speed (void)
{
  guint n = g_test_perf () ? 200000 : 20000;
  g_autoptr(GString) out = g_string_sized_new (512);
  gint64 start = g_get_monotonic_time ();

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(MynaStanza) msg = myna_stanza_new ("message", MYNA_NS_CLIENT);

      myna_stanza_set_attr (msg, "to", "juliet@example.com/balcony");
      myna_stanza_set_attr (msg, "from", "romeo@example.net/orchard");
      myna_stanza_set_attr (msg, "type", "chat");
      myna_stanza_set_attr (msg, "id", "ktx72v49");
      myna_stanza_add_text_child (msg, "body",
                                  "Art thou not Romeo, and a Montague?");
      g_string_truncate (out, 0);
      myna_stanza_serialize (msg, MYNA_NS_CLIENT, out);
    }
  g_test_message ("build + serialize: %.2f us per message",
                  (double) (g_get_monotonic_time () - start) / n);
}

/* ---- concise stanzas ------------------------------------------------------ */

/* Hostile arguments stay text and attribute values: quotes cannot close
 * an attribute, < & and ]]> cannot open markup. */
static void
test_build_escaping (void)
{
  const char *hostile = "a'\" /><evil/>&amp;]]><![CDATA[x]]>";
  g_autoptr(MynaStanza) m = myna_stanza_build (
      "<message to='%s' type=\"chat\"><body>%s</body></message>", hostile, hostile);

  g_assert_nonnull (m);
  g_assert_cmpstr (myna_stanza_get_name (m), ==, "message");
  g_assert_cmpstr (myna_stanza_get_to (m), ==, hostile);
  g_assert_cmpstr (myna_stanza_get_type (m), ==, "chat");
  g_assert_cmpuint (myna_stanza_get_n_children (m), ==, 1);
  g_assert_cmpstr (myna_stanza_get_child_text (m, "body"), ==, hostile);
  g_assert_null (myna_stanza_get_child (m, "evil", NULL));
  MynaStanza *body = myna_stanza_get_child (m, "body", NULL);
  g_assert_cmpuint (myna_stanza_get_n_children (body), ==, 1);
  g_assert_true (myna_stanza_is_text (myna_stanza_get_child_nth (body, 0)));
  assert_xml (m, MYNA_NS_CLIENT,
              "<message to='a&apos;&quot; /&gt;&lt;evil/&gt;&amp;amp;]]&gt;&lt;![CDATA[x]]&gt;' "
              "type='chat'><body>a'\" /&gt;&lt;evil/&gt;&amp;amp;]]&gt;&lt;![CDATA[x]]&gt;"
              "</body></message>");
}

/* The root is in jabber:client unless the template declares a namespace;
 * children inherit or declare theirs; numbers format as in printf. */
static void
test_build_namespaces (void)
{
  g_autoptr(MynaStanza) iq = myna_stanza_build (
      "<iq type='get' id='%s-%d'><ping xmlns='urn:xmpp:ping'/><x/></iq>", "p", 7);
  g_autoptr(MynaStanza) own = myna_stanza_build ("<a xmlns='urn:example:a'><b/></a>");

  g_assert_nonnull (iq);
  g_assert_cmpstr (myna_stanza_get_ns (iq), ==, MYNA_NS_CLIENT);
  g_assert_cmpstr (myna_stanza_get_id (iq), ==, "p-7");
  g_assert_cmpstr (myna_stanza_get_ns (myna_stanza_get_child (iq, "ping", NULL)), ==, "urn:xmpp:ping");
  g_assert_cmpstr (myna_stanza_get_ns (myna_stanza_get_child (iq, "x", NULL)), ==, MYNA_NS_CLIENT);
  g_assert_nonnull (own);
  g_assert_cmpstr (myna_stanza_get_ns (own), ==, "urn:example:a");
  g_assert_cmpstr (myna_stanza_get_ns (myna_stanza_get_child (own, "b", NULL)), ==, "urn:example:a");
}

/* A template that is not one well-formed element is a bug: NULL and a
 * critical naming the template. */
static void
test_build_malformed (void)
{
  static const char *const bad[] = {
    "<message><body>%s</message>", "<a/><b/>", "plain text %s", "<a b='%s>", "",
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_test_expect_message ("myna", G_LOG_LEVEL_CRITICAL, "*stanza template*well-formed*");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#pragma GCC diagnostic ignored "-Wformat-extra-args"
      MynaStanza *s = myna_stanza_build (bad[i], "x");
#pragma GCC diagnostic pop
      g_test_assert_expected_messages ();
      g_assert_null (s);
    }
  /* An argument XML cannot carry is the caller's data, not a bug. */
  g_test_expect_message ("myna", G_LOG_LEVEL_WARNING, "*argument*cannot carry*");
  MynaStanza *s = myna_stanza_build ("<body>%s</body>", "bell\a");
  g_test_assert_expected_messages ();
  g_assert_null (s);
}

/* The result answers the iq: id kept, to and from swapped, the payload's
 * elements as children (jabber:client unless declared), escaped. */
static void
test_build_result (void)
{
  g_autoptr(MynaStanza) iq = myna_stanza_build (
      "<iq type='get' id='v1' from='juliet@localhost/balcony' to='localhost'>"
      "<query xmlns='jabber:iq:version'/></iq>");
  g_autoptr(MynaStanza) r = myna_stanza_build_result (
      iq, "<query xmlns='jabber:iq:version'><name>%s</name></query> <extra/>", "M<y>na");
  g_autoptr(MynaStanza) empty = myna_stanza_build_result (iq, NULL);

  g_assert_nonnull (r);
  assert_xml (r, MYNA_NS_CLIENT,
              "<iq id='v1' type='result' to='juliet@localhost/balcony' from='localhost'>"
              "<query xmlns='jabber:iq:version'><name>M&lt;y&gt;na</name></query><extra/></iq>");
  g_assert_cmpstr (myna_stanza_get_ns (myna_stanza_get_child (r, "extra", NULL)), ==, MYNA_NS_CLIENT);
  assert_xml (empty, MYNA_NS_CLIENT,
              "<iq id='v1' type='result' to='juliet@localhost/balcony' from='localhost'/>");

  g_test_expect_message ("myna", G_LOG_LEVEL_CRITICAL, "*stanza template*");
  MynaStanza *bad = myna_stanza_build_result (iq, "<query>%s", "x");
  g_test_assert_expected_messages ();
  g_assert_null (bad);
}

/* XEP-0203 <delay/>: the stamp in UTC (XEP-0082), now when none is
 * given; from and the reason text only when given. */
static void
test_add_delay (void)
{
  g_autoptr(GTimeZone) tz = g_time_zone_new_offset (2 * 3600);
  g_autoptr(GDateTime) local = g_date_time_new (tz, 2002, 9, 10, 23, 8, 25);
  g_autoptr(MynaStanza) msg = myna_stanza_build ("<message to='a@localhost'/>");
  g_autoptr(MynaStanza) bare = myna_stanza_build ("<message/>");
  g_autoptr(GDateTime) before = g_date_time_new_now_utc ();
  MynaStanza *delay = myna_stanza_add_delay (msg, "localhost", local, "Offline Storage");
  MynaStanza *now = myna_stanza_add_delay (bare, NULL, NULL, NULL);

  g_assert_true (delay == myna_stanza_get_child (msg, "delay", "urn:xmpp:delay"));
  assert_xml (msg, MYNA_NS_CLIENT,
              "<message to='a@localhost'><delay xmlns='urn:xmpp:delay' from='localhost' "
              "stamp='2002-09-10T21:08:25Z'>Offline Storage</delay></message>");
  g_assert_null (myna_stanza_get_attr (now, "from"));
  g_assert_cmpuint (myna_stanza_get_n_children (now), ==, 0);
  g_autoptr(GTimeZone) utc = g_time_zone_new_utc ();
  g_autoptr(GDateTime) stamp = g_date_time_new_from_iso8601 (myna_stanza_get_attr (now, "stamp"), utc);
  g_assert_nonnull (stamp);
  g_assert_cmpint (g_date_time_difference (stamp, before), >=, -G_USEC_PER_SEC);
  g_assert_cmpint (g_date_time_difference (stamp, before), <=, 60 * G_USEC_PER_SEC);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/stanza/build", test_build);
  g_test_add_func ("/stanza/text-node", test_text_node);
  g_test_add_func ("/stanza/attributes", test_attributes);
  g_test_add_func ("/stanza/namespaces", test_namespaces);
  g_test_add_func ("/stanza/escaping", test_escaping);
  g_test_add_func ("/stanza/invalid-chars", test_invalid_chars);
  g_test_add_func ("/stanza/round-trip", test_round_trip);
  g_test_add_func ("/stanza/copy", test_copy);
  g_test_add_func ("/stanza/name-storage", test_name_storage);
  g_test_add_func ("/stanza/text-merging", test_text_merging);
  g_test_add_func ("/stanza/text-shared", test_text_shared);
  g_test_add_func ("/stanza/remove-children", test_remove_children);
  g_test_add_func ("/stanza/get-child", test_get_child);
  g_test_add_func ("/stanza/refcount", test_refcount);
  g_test_add_func ("/stanza/iq-result", test_iq_result);
  g_test_add_func ("/stanza/new-error", test_new_error);
  g_test_add_func ("/stanza/misuse", test_misuse);
  g_test_add_func ("/stanza/speed", test_speed);
  g_test_add_func ("/stanza/build/escaping", test_build_escaping);
  g_test_add_func ("/stanza/build/namespaces", test_build_namespaces);
  g_test_add_func ("/stanza/build/malformed", test_build_malformed);
  g_test_add_func ("/stanza/build/result", test_build_result);
  g_test_add_func ("/stanza/delay", test_add_delay);

  return g_test_run ();
}
