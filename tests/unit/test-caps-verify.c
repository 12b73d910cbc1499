/* XEP-0115 verification strings and hashes (modules/caps/verify.c),
 * compiled in alone: the examples of XEP-0115 §5.2 and §5.3, and the
 * answers §5.4 says to refuse. */
#include <myna/stanza.h>
#include <myna/xmlstream.h>

#include "verify.h"

/* XEP-0115 §5.2: Exodus, identities and features only. */
static const char simple_xml[] =
  "<query xmlns='http://jabber.org/protocol/disco#info'"
  " node='http://code.google.com/p/exodus#QgayPKawpkPSDYmwT/WM94uAlu0='>"
  "<identity category='client' name='Exodus 0.9.1' type='pc'/>"
  "<feature var='http://jabber.org/protocol/caps'/>"
  "<feature var='http://jabber.org/protocol/disco#info'/>"
  "<feature var='http://jabber.org/protocol/disco#items'/>"
  "<feature var='http://jabber.org/protocol/muc'/>"
  "</query>";

/* XEP-0115 §5.3: Psi, two languages and an extended form, out of order
 * and with whitespace as a client may send it. */
static const char complex_xml[] =
  "<query xmlns='http://jabber.org/protocol/disco#info'\n"
  "  node='http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w='>\n"
  "  <identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>\n"
  "  <identity xml:lang='el' category='client' name='\xce\xa8 0.11' type='pc'/>\n"
  "  <feature var='http://jabber.org/protocol/muc'/>\n"
  "  <feature var='http://jabber.org/protocol/caps'/>\n"
  "  <feature var='http://jabber.org/protocol/disco#items'/>\n"
  "  <feature var='http://jabber.org/protocol/disco#info'/>\n"
  "  <x xmlns='jabber:x:data' type='result'>\n"
  "    <field var='FORM_TYPE' type='hidden'>\n"
  "      <value>urn:xmpp:dataforms:softwareinfo</value>\n"
  "    </field>\n"
  "    <field var='software'><value>Psi</value></field>\n"
  "    <field var='ip_version' type='text-multi'>\n"
  "      <value>ipv6</value>\n"
  "      <value>ipv4</value>\n"
  "    </field>\n"
  "    <field var='os'><value>Mac</value></field>\n"
  "    <field var='os_version'><value>10.5.1</value></field>\n"
  "    <field var='software_version'><value>0.11</value></field>\n"
  "  </x>\n"
  "</query>";

static MynaStanza *
parse (const char *xml)
{
  g_autoptr(GError) error = NULL;
  MynaStanza *s = myna_stanza_parse (xml, -1, &error);

  g_assert_no_error (error);
  g_assert_nonnull (s);
  return s;
}

static void
test_simple (void)
{
  g_autoptr(MynaStanza) q = parse (simple_xml);
  g_autofree char *s = caps_verification_string (q, NULL);
  g_autofree char *sha1 = NULL, *sha256 = NULL, *sha3 = NULL;
  g_auto(GStrv) features = caps_query_features (q);

  g_assert_cmpstr (s, ==, "client/pc//Exodus 0.9.1<http://jabber.org/protocol/caps<"
                   "http://jabber.org/protocol/disco#info<"
                   "http://jabber.org/protocol/disco#items<http://jabber.org/protocol/muc<");
  sha1 = caps_hash_ver ("sha-1", s);
  g_assert_cmpstr (sha1, ==, "QgayPKawpkPSDYmwT/WM94uAlu0=");
  /* The same string under other hashes (Python's hashlib gave these). */
  sha256 = caps_hash_ver ("sha-256", s);
  g_assert_cmpstr (sha256, ==, "Wr6IGEKhx6b9627gBmi/cCmpxXBc/GYq5zWuYfWGWoc=");
  sha3 = caps_hash_ver ("sha3-256", s);
  g_assert_cmpstr (sha3, ==, "GTtv1IDf4A/AUFSA/oZGBx5zGqFrUuvrffBWUebXFjo=");
  g_assert_cmpuint (g_strv_length (features), ==, 4);
  g_assert_cmpstr (features[0], ==, "http://jabber.org/protocol/caps");
  g_assert_cmpstr (features[3], ==, "http://jabber.org/protocol/muc");
}

static void
test_complex (void)
{
  g_autoptr(MynaStanza) q = parse (complex_xml);
  g_autofree char *s = caps_verification_string (q, NULL);
  g_autofree char *sha1 = NULL;

  g_assert_cmpstr (s, ==,
                   "client/pc/el/\xce\xa8 0.11<client/pc/en/Psi 0.11<"
                   "http://jabber.org/protocol/caps<http://jabber.org/protocol/disco#info<"
                   "http://jabber.org/protocol/disco#items<http://jabber.org/protocol/muc<"
                   "urn:xmpp:dataforms:softwareinfo<ip_version<ipv4<ipv6<os<Mac<"
                   "os_version<10.5.1<software<Psi<software_version<0.11<");
  sha1 = caps_hash_ver ("sha-1", s);
  g_assert_cmpstr (sha1, ==, "q07IKJEyjvHSyhy//CH0CxmKi8w=");
}

/* §5.4: answers to refuse, forms to leave out, hashes not known. */
static void
test_refused (void)
{
  static const char *bad[] = {
    /* a feature twice */
    "<query xmlns='http://jabber.org/protocol/disco#info'>"
    "<feature var='a'/><feature var='a'/></query>",
    /* an identity twice */
    "<query xmlns='http://jabber.org/protocol/disco#info'>"
    "<identity category='client' type='pc'/><identity category='client' type='pc'/></query>",
    /* two forms of one FORM_TYPE */
    "<query xmlns='http://jabber.org/protocol/disco#info'>"
    "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>u</value></field></x>"
    "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>u</value></field></x>"
    "</query>",
    /* a FORM_TYPE of two values */
    "<query xmlns='http://jabber.org/protocol/disco#info'>"
    "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'>"
    "<value>u</value><value>v</value></field></x></query>",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(MynaStanza) q = parse (bad[i]);
      const char *why = NULL;
      g_autofree char *s = caps_verification_string (q, &why);

      g_assert_null (s);
      g_assert_nonnull (why);
    }

  /* A form whose FORM_TYPE is not hidden is left out, the rest counts. */
  g_autoptr(MynaStanza) q = parse (
      "<query xmlns='http://jabber.org/protocol/disco#info'><feature var='f'/>"
      "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE'><value>u</value></field>"
      "<field var='k'><value>v</value></field></x></query>");
  g_autofree char *s = caps_verification_string (q, NULL);
  g_assert_cmpstr (s, ==, "f<");

  g_assert_null (caps_hash_ver ("sha-0", "x"));
  g_assert_false (caps_hash_known ("crc32"));
  g_assert_true (caps_hash_known ("sha-1"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/caps/verify/simple", test_simple);
  g_test_add_func ("/caps/verify/complex", test_complex);
  g_test_add_func ("/caps/verify/refused", test_refused);
  return g_test_run ();
}
