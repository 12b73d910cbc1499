/* jid.c: parsing, normalising and comparing XMPP addresses (RFC 7622).
 *
 * The contract is include/myna/jid.h.  Each part is prepared on its own:
 *
 *  - localpart: PRECIS UsernameCaseMapped (RFC 8265 §3.3): width mapping,
 *    simple lower-case mapping, NFC, then the IdentifierClass check and the
 *    extra RFC 7622 §3.3.1 exclusions (" & ' / : < > @);
 *  - domainpart: RFC 7622 §3.2: width mapping, lower case, NFC, label
 *    separators (U+3002, U+FF0E, U+FF61) mapped to '.', one trailing '.'
 *    removed.  Then one of: a dotted-quad IPv4 literal, kept as is (a name
 *    of only digits and dots must be one); a bracketed IPv6 literal, kept
 *    in RFC 5952 form (lower case, zeros compressed, so "[0::1]" equals
 *    "[::1]"; no zone index); or labels.  ASCII labels are letters, digits,
 *    '-' and, tolerated for internal host names, '_'; 1..63 bytes; no '-'
 *    first or last; no "--" in third and fourth position unless "xn--".
 *    Other labels are checked with libidn2 in strict IDNA2008 mode (no
 *    TR46 mapping, so "Ⅳ" is refused, not turned into "iv") and kept as
 *    U-labels; A-labels are converted to U-labels and must round-trip, so
 *    "xn--xample-ova.com" and "ëxample.com" are the same domain;
 *  - resourcepart: PRECIS OpaqueString (RFC 8265 §4.2): non-ASCII spaces
 *    mapped to U+0020, NFC, then the FreeformClass check.
 *
 * Character classes, as approximated with GLib's Unicode tables (RFC 8264
 * §9), for code points outside ASCII:
 *
 *  - always refused: controls (Cc), format characters (Cf), unassigned
 *    (Cn), private use (Co), surrogates (Cs), line and paragraph separators
 *    (Zl, Zp), the default-ignorable code points that are not Cf (variation
 *    selectors, U+034F, Hangul fillers, ...), old Hangul jamo (conjoining
 *    jamo left over after NFC), the IDNA2008 exceptions marked DISALLOWED,
 *    ZWJ/ZWNJ except after a virama, and the CONTEXTO characters out of
 *    context (middle dot outside "l·l", Greek keraia not before Greek,
 *    Hebrew geresh/gershayim not after Hebrew, katakana middle dot without
 *    kana or Han, Arabic-Indic digits of both kinds mixed);
 *  - IdentifierClass (localpart) additionally refuses spaces (Zs),
 *    symbols (Sm Sc Sk So), punctuation (P*), titlecase letters, letter and
 *    other numbers (Lt Nl No), enclosing marks (Me), and every code point
 *    with a compatibility decomposition (e.g. U+2163 "Ⅳ", ligatures);
 *  - FreeformClass (resourcepart) accepts all of those.
 *
 * In ASCII, a localpart may hold any printable character but space and
 * " & ' / : < > @ (so ',' '\' '!' are fine); a resourcepart any printable
 * character and space.  Note that FreeformClass is strict: emoji with a
 * variation selector (U+FE0F) or a ZWJ sequence are refused in resources.
 *
 * Width mapping (localpart and domainpart) maps each <wide>/<narrow> code
 * point to its one-step decomposition: fullwidth ASCII by offset, the
 * halfwidth Hangul by small range tables, the rest (which decompose in one
 * step) with g_unichar_fully_decompose (); checked against UnicodeData for
 * all 226 such code points.  NFKC is not applied to anything else.
 *
 * Not implemented: the Bidi Rule for localparts (GLib has no bidi classes;
 * libidn2 applies it to domain labels), the Arabic joining-type context
 * that also allows ZWNJ, and full (multi-character) case mappings: case is
 * mapped code point by code point with g_unichar_tolower (), which is
 * locale-independent and maps U+03A3 to U+03C3 wherever it occurs.
 *
 * Fast path: a part made only of lower-case ASCII that needs no change is
 * checked by one byte scan and copied straight into the result; libidn2 and
 * g_utf8_normalize () are used only for other input. */
#include "myna/jid.h"

#include <arpa/inet.h>
#include <idn2.h>
#include <string.h>

#define JID_PART_MAX 1023
/* Inputs longer than this are refused before normalisation, which can
 * shrink a string at most about three times (Hangul L V T jamo). */
#define JID_PART_RAW_MAX (4 * JID_PART_MAX)

struct _MynaJid
{
  gatomicrefcount ref_count;
  guint hash;
  gsize full_len;
  gsize bare_len;
  const char *local;     /* NULL when absent */
  const char *domain;    /* the tail of bare */
  const char *resource;  /* the tail of full, NULL when absent */
  const char *bare;      /* full itself when there is no resource */
  char full[];           /* full NUL [bare NUL] [local NUL] */
};

G_DEFINE_QUARK (myna-jid-error-quark, myna_jid_error)

/* One prepared part: @str/@len, either a slice of the input (nothing to
 * change) or @owned. */
typedef struct
{
  const char *str;
  gsize len;
  char *owned;
} JidPart;

static void
jid_part_clear (JidPart *part)
{
  g_clear_pointer (&part->owned, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (JidPart, jid_part_clear)

static void
jid_part_borrow (JidPart *part, const char *str, gsize len)
{
  part->str = str;
  part->len = len;
}

static void
jid_part_take (JidPart *part, char *owned)
{
  g_free (part->owned);
  part->owned = owned;
  part->str = owned;
  part->len = strlen (owned);
}

/* Which part a check is for: names it in messages and picks the error. */
typedef enum
{
  JID_LOCAL,
  JID_DOMAIN,
  JID_RESOURCE,
} JidPartKind;

static const char *
part_name (JidPartKind kind)
{
  switch (kind)
    {
    case JID_LOCAL:
      return "localpart";
    case JID_DOMAIN:
      return "domainpart";
    case JID_RESOURCE:
    default:
      return "resourcepart";
    }
}

static MynaJidError
part_error (JidPartKind kind)
{
  switch (kind)
    {
    case JID_LOCAL:
      return MYNA_JID_ERROR_BAD_LOCAL;
    case JID_DOMAIN:
      return MYNA_JID_ERROR_BAD_DOMAIN;
    case JID_RESOURCE:
    default:
      return MYNA_JID_ERROR_BAD_RESOURCE;
    }
}

static gboolean
set_empty_error (JidPartKind kind, GError **error)
{
  g_set_error (error, MYNA_JID_ERROR, MYNA_JID_ERROR_EMPTY,
               "JID %s is empty", part_name (kind));
  return FALSE;
}

static gboolean
check_length (JidPartKind kind, gsize len, GError **error)
{
  if (len == 0)
    return set_empty_error (kind, error);
  if (len > JID_PART_MAX)
    {
      g_set_error (error, MYNA_JID_ERROR, MYNA_JID_ERROR_TOO_LONG,
                   "JID %s is %" G_GSIZE_FORMAT " bytes long, over the "
                   "limit of %d", part_name (kind), len, JID_PART_MAX);
      return FALSE;
    }
  return TRUE;
}

static gboolean
set_utf8_error (JidPartKind kind, GError **error)
{
  g_set_error (error, MYNA_JID_ERROR, MYNA_JID_ERROR_BAD_UTF8,
               "JID %s is not valid UTF-8", part_name (kind));
  return FALSE;
}

static gboolean
check_utf8 (const char *str, gsize len, JidPartKind kind, GError **error)
{
  return g_utf8_validate_len (str, len, NULL) || set_utf8_error (kind, error);
}

static gboolean
is_ascii (const char *str, gsize len)
{
  for (gsize i = 0; i < len; i++)
    if ((guchar) str[i] >= 0x80)
      return FALSE;
  return TRUE;
}

/* ---- Character mappings -------------------------------------------- */

/* Maps a fullwidth or halfwidth code point to its <wide>/<narrow>
 * decomposition (one step, as RFC 8264 §5.2.1 asks), anything else to
 * itself. */
static gunichar
width_map (gunichar c)
{
  if (c == 0x3000)
    return 0x20;
  if (c < 0xFF01 || c > 0xFFEE)
    return c;
  if (c <= 0xFF5E)
    return c - 0xFEE0;                  /* fullwidth ASCII */
  if (c == 0xFFA0)
    return 0x3164;                      /* halfwidth Hangul filler */
  if (c >= 0xFFA1 && c <= 0xFFBE)
    return c - 0xFFA1 + 0x3131;         /* halfwidth Hangul consonants */
  if (c >= 0xFFC2 && c <= 0xFFC7)
    return c - 0xFFC2 + 0x314F;         /* halfwidth Hangul vowels, */
  if (c >= 0xFFCA && c <= 0xFFCF)
    return c - 0xFFCA + 0x3155;         /* in four runs */
  if (c >= 0xFFD2 && c <= 0xFFD7)
    return c - 0xFFD2 + 0x315B;
  if (c >= 0xFFDA && c <= 0xFFDC)
    return c - 0xFFDA + 0x3161;
  if (c == 0xFFE3)
    return 0x00AF;                      /* fullwidth macron: one step only */

  /* The rest (halfwidth katakana and CJK punctuation, fullwidth signs,
   * halfwidth arrows and shapes) decompose in exactly one step. */
  gunichar out[G_UNICHAR_MAX_DECOMPOSITION_LENGTH];
  gsize n = g_unichar_fully_decompose (c, TRUE, out, G_N_ELEMENTS (out));

  return n == 1 ? out[0] : c;
}

/* Maps every space of general category Zs to U+0020. */
static gunichar
space_map (gunichar c)
{
  return g_unichar_type (c) == G_UNICODE_SPACE_SEPARATOR ? 0x20 : c;
}

/* The RFC 7622 §3.2 domainpart mappings: width, lower case, and the
 * ideographic and fullwidth full stops to '.'. */
static gunichar
domain_map (gunichar c)
{
  c = width_map (c);
  if (c == 0x3002 || c == 0xFF61)
    return '.';
  return g_unichar_tolower (c);
}

static gunichar
local_map (gunichar c)
{
  return g_unichar_tolower (width_map (c));
}

/* Applies @map to each code point of valid UTF-8 @str, then NFC. */
static char *
map_and_normalize (const char *str, gsize len, gunichar (*map) (gunichar))
{
  g_autoptr(GString) buf = g_string_sized_new (len + 1);

  for (const char *p = str; p < str + len; p = g_utf8_next_char (p))
    g_string_append_unichar (buf, map (g_utf8_get_char (p)));
  return g_utf8_normalize (buf->str, buf->len, G_NORMALIZE_NFC);
}

/* ---- PRECIS classes ------------------------------------------------ */

typedef enum
{
  PRECIS_IDENTIFIER,
  PRECIS_FREEFORM,
} PrecisClass;

static gboolean
has_compat_decomposition (gunichar c)
{
  gunichar compat[G_UNICHAR_MAX_DECOMPOSITION_LENGTH];
  gunichar canon[G_UNICHAR_MAX_DECOMPOSITION_LENGTH];
  gsize n_compat, n_canon;

  n_compat = g_unichar_fully_decompose (c, TRUE, compat, G_N_ELEMENTS (compat));
  n_canon = g_unichar_fully_decompose (c, FALSE, canon, G_N_ELEMENTS (canon));
  return n_compat != n_canon
         || memcmp (compat, canon, n_canon * sizeof (gunichar)) != 0;
}

/* Default_Ignorable_Code_Point characters that are not format (Cf) or
 * unassigned (Cn), which are refused anyway. */
static gboolean
is_ignorable (gunichar c)
{
  return c == 0x034F
         || (c >= 0x115F && c <= 0x1160)
         || (c >= 0x17B4 && c <= 0x17B5)
         || (c >= 0x180B && c <= 0x180F)
         || c == 0x3164
         || (c >= 0xFE00 && c <= 0xFE0F)
         || c == 0xFFA0
         || (c >= 0xE0100 && c <= 0xE01EF);
}

/* Conjoining jamo (Hangul_Syllable_Type L, V or T). */
static gboolean
is_old_hangul_jamo (gunichar c)
{
  return (c >= 0x1100 && c <= 0x11FF)
         || (c >= 0xA960 && c <= 0xA97F)
         || (c >= 0xD7B0 && c <= 0xD7FF);
}

/* The IDNA2008 exceptions (RFC 5892 §2.6) that are DISALLOWED, and those
 * that are PVALID although their category is not. */
static gboolean
is_exception_disallowed (gunichar c)
{
  return c == 0x0640 || c == 0x07FA || c == 0x302E || c == 0x302F
         || (c >= 0x3031 && c <= 0x3035) || c == 0x303B;
}

static gboolean
is_exception_pvalid (gunichar c)
{
  return c == 0x06FD || c == 0x06FE || c == 0x0F0B || c == 0x3007;
}

/* Why a non-ASCII code point is refused by @cls, or NULL when it is
 * valid.  The contextual characters are handled by the caller. */
static const char *
precis_refusal (gunichar c, PrecisClass cls)
{
  if (is_exception_pvalid (c))
    return NULL;
  if (is_exception_disallowed (c))
    return "disallowed by IDNA2008";
  if (is_ignorable (c))
    return "a default-ignorable code point";
  if (is_old_hangul_jamo (c))
    return "an old Hangul jamo";

  gboolean id = cls == PRECIS_IDENTIFIER;

  switch (g_unichar_type (c))
    {
    case G_UNICODE_CONTROL:
      return "a control character";
    case G_UNICODE_FORMAT:
      return "a format character";
    case G_UNICODE_UNASSIGNED:
      return "unassigned";
    case G_UNICODE_PRIVATE_USE:
    case G_UNICODE_SURROGATE:
      return "a private-use character";
    case G_UNICODE_LINE_SEPARATOR:
    case G_UNICODE_PARAGRAPH_SEPARATOR:
      return "a line or paragraph separator";
    case G_UNICODE_SPACE_SEPARATOR:
      return id ? "a space" : NULL;
    case G_UNICODE_MATH_SYMBOL:
    case G_UNICODE_CURRENCY_SYMBOL:
    case G_UNICODE_MODIFIER_SYMBOL:
    case G_UNICODE_OTHER_SYMBOL:
      return id ? "a symbol" : NULL;
    case G_UNICODE_CONNECT_PUNCTUATION:
    case G_UNICODE_DASH_PUNCTUATION:
    case G_UNICODE_OPEN_PUNCTUATION:
    case G_UNICODE_CLOSE_PUNCTUATION:
    case G_UNICODE_INITIAL_PUNCTUATION:
    case G_UNICODE_FINAL_PUNCTUATION:
    case G_UNICODE_OTHER_PUNCTUATION:
      return id ? "punctuation" : NULL;
    case G_UNICODE_TITLECASE_LETTER:
    case G_UNICODE_LETTER_NUMBER:
    case G_UNICODE_OTHER_NUMBER:
    case G_UNICODE_ENCLOSING_MARK:
      return id ? "not a letter or digit" : NULL;
    case G_UNICODE_LOWERCASE_LETTER:
    case G_UNICODE_UPPERCASE_LETTER:
    case G_UNICODE_OTHER_LETTER:
    case G_UNICODE_MODIFIER_LETTER:
    case G_UNICODE_DECIMAL_NUMBER:
    case G_UNICODE_NON_SPACING_MARK:
    case G_UNICODE_SPACING_MARK:
    default:
      break;
    }
  if (id && has_compat_decomposition (c))
    return "a compatibility character";
  return NULL;
}

/* State of a left-to-right scan for the whole-string context rules. */
typedef struct
{
  gunichar prev;
  gboolean arabic_indic;        /* U+0660..0669 seen */
  gboolean ext_arabic_indic;    /* U+06F0..06F9 seen */
  gboolean katakana_dot;        /* U+30FB seen */
  gboolean kana_or_han;
} PrecisScan;

/* Applies the CONTEXTJ/CONTEXTO rules (RFC 5892 appendix A) that can be
 * decided with the neighbours of @c.  Returns the refusal or NULL.
 * Sets *@handled when @c is contextual (and so needs no class check). */
static const char *
precis_context (PrecisScan *scan, gunichar c, gunichar next,
                gboolean *handled)
{
  *handled = TRUE;
  switch (c)
    {
    case 0x200C:
    case 0x200D:
      return g_unichar_combining_class (scan->prev) == 9
             ? NULL : "a joiner not after a virama";
    case 0x00B7:
      return scan->prev == 'l' && next == 'l'
             ? NULL : "a middle dot not between two 'l'";
    case 0x0375:
      return g_unichar_get_script (next) == G_UNICODE_SCRIPT_GREEK
             ? NULL : "a Greek keraia not before a Greek letter";
    case 0x05F3:
    case 0x05F4:
      return g_unichar_get_script (scan->prev) == G_UNICODE_SCRIPT_HEBREW
             ? NULL : "a Hebrew geresh not after a Hebrew letter";
    case 0x30FB:
      scan->katakana_dot = TRUE;
      return NULL;
    default:
      break;
    }
  *handled = FALSE;

  GUnicodeScript script = g_unichar_get_script (c);

  if (script == G_UNICODE_SCRIPT_HIRAGANA
      || script == G_UNICODE_SCRIPT_KATAKANA || script == G_UNICODE_SCRIPT_HAN)
    scan->kana_or_han = TRUE;
  if (c >= 0x0660 && c <= 0x0669)
    scan->arabic_indic = TRUE;
  if (c >= 0x06F0 && c <= 0x06F9)
    scan->ext_arabic_indic = TRUE;
  return NULL;
}

static gboolean
set_char_error (JidPartKind kind, gunichar c, const char *why,
                GError **error)
{
  g_set_error (error, MYNA_JID_ERROR, part_error (kind),
               "JID %s contains U+%04X, which is %s", part_name (kind),
               (guint) c, why);
  return FALSE;
}

/* Refusal of an ASCII character by @kind's profile, or NULL. */
static const char *
ascii_refusal (guchar c, JidPartKind kind)
{
  if (c < 0x20 || c == 0x7F)
    return "a control character";
  if (kind == JID_RESOURCE)
    return NULL;
  switch (c)
    {
    case ' ':
      return "a space";
    case '"': case '&': case '\'': case '/':
    case ':': case '<': case '>': case '@':
      return "forbidden in a localpart by RFC 7622";
    default:
      return NULL;
    }
}

/* Checks NUL-terminated, normalised @str against @kind's profile. */
static gboolean
precis_check (const char *str, JidPartKind kind, GError **error)
{
  PrecisClass cls = kind == JID_LOCAL ? PRECIS_IDENTIFIER : PRECIS_FREEFORM;
  PrecisScan scan = { 0 };

  for (const char *p = str; *p != '\0'; )
    {
      gunichar c = g_utf8_get_char (p);
      const char *why;
      gboolean handled;

      p = g_utf8_next_char (p);
      gunichar next = g_utf8_get_char (p);   /* 0 at the end */

      if (c < 0x80)
        why = ascii_refusal (c, kind);
      else if ((why = precis_context (&scan, c, next, &handled)) == NULL
               && !handled)
        why = precis_refusal (c, cls);
      if (why == NULL && kind == JID_LOCAL && g_unichar_tolower (c) != c)
        why = "an upper-case letter";
      if (why == NULL && kind == JID_RESOURCE && c != ' '
          && g_unichar_type (c) == G_UNICODE_SPACE_SEPARATOR)
        why = "a space other than U+0020";
      if (why != NULL)
        return set_char_error (kind, c, why, error);
      scan.prev = c;
    }
  if (scan.katakana_dot && !scan.kana_or_han)
    return set_char_error (kind, 0x30FB, "a katakana middle dot without "
                           "kana or Han characters", error);
  if (scan.arabic_indic && scan.ext_arabic_indic)
    return set_char_error (kind, 0x06F0, "an extended Arabic-Indic digit "
                           "mixed with Arabic-Indic digits", error);
  return TRUE;
}

/* ---- Localpart and resourcepart ------------------------------------ */

/* TRUE when @str is lower-case ASCII that the profile keeps as it is. */
static gboolean
is_plain_ascii (const char *str, gsize len, JidPartKind kind)
{
  for (gsize i = 0; i < len; i++)
    {
      guchar c = str[i];

      if (c >= 0x80 || ascii_refusal (c, kind) != NULL
          || (kind == JID_LOCAL && g_ascii_isupper (c)))
        return FALSE;
    }
  return TRUE;
}

/* Prepares valid UTF-8 @str as a localpart or resourcepart. */
static gboolean
prep_text (const char *str, gsize len, JidPartKind kind, JidPart *part,
           GError **error)
{
  if (len == 0)
    return set_empty_error (kind, error);
  if (len <= JID_PART_MAX && is_plain_ascii (str, len, kind))
    {
      jid_part_borrow (part, str, len);
      return TRUE;
    }
  if (len > JID_PART_RAW_MAX)
    return check_length (kind, len, error);

  g_autofree char *prepared = NULL;

  if (kind == JID_LOCAL && is_ascii (str, len))
    prepared = g_ascii_strdown (str, len);   /* ASCII is already NFC */
  else
    prepared = map_and_normalize (str, len, kind == JID_LOCAL
                                            ? local_map : space_map);
  if (prepared == NULL)
    return set_utf8_error (kind, error);
  if (!precis_check (prepared, kind, error))
    return FALSE;
  jid_part_take (part, g_steal_pointer (&prepared));
  return check_length (kind, part->len, error);
}

/* ---- Domainpart ---------------------------------------------------- */

static gboolean
set_domain_error (GError **error, const char *format, ...) G_GNUC_PRINTF (2, 3);

static gboolean
set_domain_error (GError **error, const char *format, ...)
{
  va_list args;

  va_start (args, format);
  g_autofree char *message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, MYNA_JID_ERROR, MYNA_JID_ERROR_BAD_DOMAIN,
               "JID domainpart %s", message);
  return FALSE;
}

static gboolean
is_ldh (guchar c)
{
  return g_ascii_isalnum (c) || c == '-' || c == '_';
}

/* TRUE when @str has the form of an IPv4 address (digits and dots). */
static gboolean
looks_numeric (const char *str, gsize len)
{
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isdigit (str[i]) && str[i] != '.')
      return FALSE;
  return TRUE;
}

/* TRUE when @str is a lower-case LDH name that needs no change: no
 * trailing dot, no A-label or other "??--" label, not numeric. */
static gboolean
is_plain_domain (const char *str, gsize len)
{
  gsize label = 0;
  gboolean numeric = TRUE;

  if (len == 0 || len > JID_PART_MAX)
    return FALSE;
  for (gsize i = 0; i <= len; i++)
    {
      guchar c = i < len ? str[i] : '.';

      if (c == '.')
        {
          if (label == 0 || label > 63 || str[i - 1] == '-')
            return FALSE;
          label = 0;
          continue;
        }
      if (!is_ldh (c) || g_ascii_isupper (c) || (label == 0 && c == '-')
          || (label == 3 && c == '-' && str[i - 1] == '-'))
        return FALSE;
      numeric = numeric && g_ascii_isdigit (c);
      label++;
    }
  return !numeric;
}

/* No label may start or end with '-' (RFC 5891 §4.2.3.1). */
static gboolean
check_hyphens (const char *label, gsize len, GError **error)
{
  if (label[0] == '-' || label[len - 1] == '-')
    return set_domain_error (error, "has a label that starts or ends "
                             "with '-'");
  return TRUE;
}

/* Checks one lower-case ASCII label that is not an A-label. */
static gboolean
check_ldh_label (const char *label, gsize len, GError **error)
{
  if (len > 63)
    return set_domain_error (error, "has a label of %" G_GSIZE_FORMAT
                             " bytes, over 63", len);
  for (gsize i = 0; i < len; i++)
    if (!is_ldh (label[i]))
      return set_domain_error (error, "contains U+%04X, which is not a "
                               "letter, digit, '-' or '_'",
                               (guchar) label[i]);
  if (!check_hyphens (label, len, error))
    return FALSE;
  if (len >= 4 && label[2] == '-' && label[3] == '-')
    return set_domain_error (error, "has a reserved label with \"--\" "
                             "in third and fourth position");
  return TRUE;
}

/* Validates U-label @ulabel with libidn2 (strict IDNA2008, no TR46
 * mapping: the RFC 7622 mappings are done already; in this mode libidn2
 * leaves the leading and trailing hyphen rule to us).  Stores the A-label
 * in @alabel. */
static gboolean
check_ulabel (const char *ulabel, char **alabel, GError **error)
{
  uint8_t *out = NULL;
  int rc;

  if (!check_hyphens (ulabel, strlen (ulabel), error))
    return FALSE;
  rc = idn2_lookup_u8 ((const uint8_t *) ulabel, &out,
                       IDN2_NFC_INPUT | IDN2_NO_TR46);
  if (rc != IDN2_OK)
    return set_domain_error (error, "has an invalid internationalised "
                             "label: %s", idn2_strerror (rc));
  *alabel = (char *) out;   /* malloc()ed; g_free () is free () */
  return TRUE;
}

/* Converts lower-case A-label @alabel to its U-label, checking that it is
 * the A-label of a valid U-label that our own mappings leave unchanged
 * (e.g. not upper-case Cherokee, which IDNA2008 allows but that
 * g_unichar_tolower () changes), so that the result re-parses the same. */
static char *
alabel_to_ulabel (const char *alabel, GError **error)
{
  g_autofree char *ulabel = NULL;
  g_autofree char *mapped = NULL;
  g_autofree char *back = NULL;

  if (idn2_to_unicode_8z8z (alabel, &ulabel, 0) != IDN2_OK
      || ulabel == NULL || is_ascii (ulabel, strlen (ulabel))
      || !g_utf8_validate (ulabel, -1, NULL))
    {
      set_domain_error (error, "has a label \"xn--...\" that is not a "
                        "valid A-label");
      return NULL;
    }
  if (!check_ulabel (ulabel, &back, error))
    return NULL;
  mapped = map_and_normalize (ulabel, strlen (ulabel), domain_map);
  if (strcmp (back, alabel) != 0 || g_strcmp0 (mapped, ulabel) != 0)
    {
      set_domain_error (error, "has an A-label that is not in canonical "
                        "form");
      return NULL;
    }
  return g_steal_pointer (&ulabel);
}

/* Checks one label of a mapped, lower-case domain and appends its
 * canonical (U-label) form to @out. */
static gboolean
append_label (GString *out, const char *label, gsize len, GError **error)
{
  g_autofree char *copy = g_strndup (label, len);

  if (len == 0)
    return set_domain_error (error, "has an empty label");
  if (!is_ascii (label, len))
    {
      g_autofree char *alabel = NULL;

      if (!check_ulabel (copy, &alabel, error))
        return FALSE;
      g_string_append (out, copy);
      return TRUE;
    }
  if (g_str_has_prefix (copy, "xn--"))
    {
      g_autofree char *ulabel = alabel_to_ulabel (copy, error);

      if (ulabel == NULL)
        return FALSE;
      g_string_append (out, ulabel);
      return TRUE;
    }
  if (!check_ldh_label (copy, len, error))
    return FALSE;
  g_string_append_len (out, label, len);
  return TRUE;
}

/* "[IPv6]" in canonical (RFC 5952) form. */
static gboolean
prep_ipv6 (const char *str, gsize len, JidPart *part, GError **error)
{
  char inner[INET6_ADDRSTRLEN];
  char text[INET6_ADDRSTRLEN];
  struct in6_addr addr;

  if (len < 3 || str[len - 1] != ']' || len - 2 >= sizeof inner)
    return set_domain_error (error, "is not a valid IPv6 literal");
  memcpy (inner, str + 1, len - 2);
  inner[len - 2] = '\0';
  if (inet_pton (AF_INET6, inner, &addr) != 1
      || inet_ntop (AF_INET6, &addr, text, sizeof text) == NULL)
    return set_domain_error (error, "is not a valid IPv6 literal");
  jid_part_take (part, g_strdup_printf ("[%s]", text));
  return TRUE;
}

/* A name made only of digits and dots must be an IPv4 address. */
static gboolean
check_ipv4 (const char *str, gsize len, GError **error)
{
  char text[INET_ADDRSTRLEN];
  struct in_addr addr;

  if (len >= sizeof text)
    return set_domain_error (error, "is numeric but not an IPv4 address");
  memcpy (text, str, len);
  text[len] = '\0';
  if (inet_pton (AF_INET, text, &addr) != 1)
    return set_domain_error (error, "is numeric but not an IPv4 address");
  return TRUE;
}

/* The general case, for mapped, lower-case @str without a trailing dot. */
static gboolean
prep_domain_labels (const char *str, gsize len, JidPart *part,
                    GError **error)
{
  if (str[0] == '[')
    return prep_ipv6 (str, len, part, error);
  if (looks_numeric (str, len))
    {
      if (!check_ipv4 (str, len, error))
        return FALSE;
      jid_part_take (part, g_strndup (str, len));
      return TRUE;
    }

  g_autoptr(GString) out = g_string_sized_new (len + 1);
  const char *end = str + len;

  for (const char *label = str; label <= end; )
    {
      const char *dot = memchr (label, '.', end - label);

      if (dot == NULL)
        dot = end;
      if (!append_label (out, label, dot - label, error))
        return FALSE;
      if (dot < end)
        g_string_append_c (out, '.');
      label = dot + 1;
    }
  jid_part_take (part, g_string_free (g_steal_pointer (&out), FALSE));
  return check_length (JID_DOMAIN, part->len, error);
}

/* Prepares valid UTF-8 @str as a domainpart. */
static gboolean
prep_domain (const char *str, gsize len, JidPart *part, GError **error)
{
  if (is_plain_domain (str, len))
    {
      jid_part_borrow (part, str, len);
      return TRUE;
    }
  if (len == 0)
    return set_empty_error (JID_DOMAIN, error);
  if (len > JID_PART_RAW_MAX)
    return check_length (JID_DOMAIN, len, error);

  g_autofree char *mapped = NULL;

  if (is_ascii (str, len))
    mapped = g_ascii_strdown (str, len);
  else
    mapped = map_and_normalize (str, len, domain_map);
  if (mapped == NULL)
    return set_utf8_error (JID_DOMAIN, error);

  gsize mapped_len = strlen (mapped);

  if (mapped_len > 0 && mapped[mapped_len - 1] == '.')
    mapped[--mapped_len] = '\0';
  if (mapped_len == 0)
    return set_empty_error (JID_DOMAIN, error);
  return prep_domain_labels (mapped, mapped_len, part, error);
}

/* ---- MynaJid ------------------------------------------------------- */

/* Builds a MynaJid from prepared parts; @local and @resource may be NULL. */
static MynaJid *
jid_assemble (const char *local, gsize local_len,
              const char *domain, gsize domain_len,
              const char *resource, gsize resource_len)
{
  gsize bare_len = (local != NULL ? local_len + 1 : 0) + domain_len;
  gsize full_len = bare_len + (resource != NULL ? resource_len + 1 : 0);
  gsize size = sizeof (MynaJid) + full_len + 1
               + (resource != NULL ? bare_len + 1 : 0)
               + (local != NULL ? local_len + 1 : 0);
  MynaJid *jid = g_malloc (size);
  char *p = jid->full;

  g_atomic_ref_count_init (&jid->ref_count);
  jid->full_len = full_len;
  jid->bare_len = bare_len;
  if (local != NULL)
    {
      memcpy (p, local, local_len);
      p[local_len] = '@';
      p += local_len + 1;
    }
  memcpy (p, domain, domain_len);
  p += domain_len;
  if (resource != NULL)
    {
      *p++ = '/';
      memcpy (p, resource, resource_len);
      p += resource_len;
    }
  *p++ = '\0';

  if (resource != NULL)
    {
      jid->bare = p;
      memcpy (p, jid->full, bare_len);
      p[bare_len] = '\0';
      p += bare_len + 1;
      jid->resource = jid->full + bare_len + 1;
    }
  else
    {
      jid->bare = jid->full;
      jid->resource = NULL;
    }
  jid->domain = jid->bare + bare_len - domain_len;
  jid->local = NULL;
  if (local != NULL)
    {
      memcpy (p, local, local_len);
      p[local_len] = '\0';
      jid->local = p;
    }
  jid->hash = g_str_hash (jid->full);
  return jid;
}

/* Prepares the three parts (@local and @resource may be NULL; all valid
 * UTF-8) and builds the address. */
static MynaJid *
jid_build (const char *local, gsize local_len,
           const char *domain, gsize domain_len,
           const char *resource, gsize resource_len, GError **error)
{
  g_auto(JidPart) lp = { 0 };
  g_auto(JidPart) dp = { 0 };
  g_auto(JidPart) rp = { 0 };

  if (local != NULL && !prep_text (local, local_len, JID_LOCAL, &lp, error))
    return NULL;
  if (!prep_domain (domain, domain_len, &dp, error))
    return NULL;
  if (resource != NULL
      && !prep_text (resource, resource_len, JID_RESOURCE, &rp, error))
    return NULL;
  return jid_assemble (lp.str, lp.len, dp.str, dp.len, rp.str, rp.len);
}

MynaJid *
myna_jid_parse (const char *str, GError **error)
{
  const char *slash = NULL;
  const char *at = NULL;
  gboolean ascii = TRUE;
  const char *p;

  g_return_val_if_fail (str != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  for (p = str; *p != '\0'; p++)
    {
      if ((guchar) *p >= 0x80)
        ascii = FALSE;
      else if (*p == '/' && slash == NULL)
        slash = p;
      else if (*p == '@' && at == NULL && slash == NULL)
        at = p;
    }
  if (!ascii && !g_utf8_validate_len (str, p - str, NULL))
    {
      g_set_error_literal (error, MYNA_JID_ERROR, MYNA_JID_ERROR_BAD_UTF8,
                           "JID is not valid UTF-8");
      return NULL;
    }
  if (p == str)
    {
      g_set_error_literal (error, MYNA_JID_ERROR, MYNA_JID_ERROR_EMPTY,
                           "JID is empty");
      return NULL;
    }

  const char *domain = at != NULL ? at + 1 : str;
  const char *domain_end = slash != NULL ? slash : p;

  return jid_build (at != NULL ? str : NULL,
                    at != NULL ? (gsize) (at - str) : 0,
                    domain, domain_end - domain,
                    slash != NULL ? slash + 1 : NULL,
                    slash != NULL ? (gsize) (p - slash - 1) : 0, error);
}

MynaJid *
myna_jid_new (const char *local, const char *domain, const char *resource,
              GError **error)
{
  g_return_val_if_fail (domain != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  gsize local_len = local != NULL ? strlen (local) : 0;
  gsize domain_len = strlen (domain);
  gsize resource_len = resource != NULL ? strlen (resource) : 0;

  if ((local != NULL && !check_utf8 (local, local_len, JID_LOCAL, error))
      || !check_utf8 (domain, domain_len, JID_DOMAIN, error)
      || (resource != NULL
          && !check_utf8 (resource, resource_len, JID_RESOURCE, error)))
    return NULL;
  return jid_build (local, local_len, domain, domain_len,
                    resource, resource_len, error);
}

MynaJid *
myna_jid_ref (MynaJid *jid)
{
  g_return_val_if_fail (jid != NULL, NULL);

  g_atomic_ref_count_inc (&jid->ref_count);
  return jid;
}

void
myna_jid_unref (MynaJid *jid)
{
  g_return_if_fail (jid != NULL);

  if (g_atomic_ref_count_dec (&jid->ref_count))
    g_free (jid);
}

const char *
myna_jid_get_local (const MynaJid *jid)
{
  g_return_val_if_fail (jid != NULL, NULL);
  return jid->local;
}

const char *
myna_jid_get_domain (const MynaJid *jid)
{
  g_return_val_if_fail (jid != NULL, NULL);
  return jid->domain;
}

const char *
myna_jid_get_resource (const MynaJid *jid)
{
  g_return_val_if_fail (jid != NULL, NULL);
  return jid->resource;
}

const char *
myna_jid_to_string (const MynaJid *jid)
{
  g_return_val_if_fail (jid != NULL, NULL);
  return jid->full;
}

const char *
myna_jid_bare_string (const MynaJid *jid)
{
  g_return_val_if_fail (jid != NULL, NULL);
  return jid->bare;
}

gboolean
myna_jid_is_bare (const MynaJid *jid)
{
  g_return_val_if_fail (jid != NULL, FALSE);
  return jid->resource == NULL;
}

static gsize
local_len (const MynaJid *jid)
{
  return jid->local != NULL ? (gsize) (jid->domain - jid->bare - 1) : 0;
}

MynaJid *
myna_jid_get_bare (MynaJid *jid)
{
  g_return_val_if_fail (jid != NULL, NULL);

  if (jid->resource == NULL)
    return myna_jid_ref (jid);
  return jid_assemble (jid->local, local_len (jid),
                       jid->domain, strlen (jid->domain), NULL, 0);
}

MynaJid *
myna_jid_with_resource (const MynaJid *jid, const char *resource,
                        GError **error)
{
  g_auto(JidPart) rp = { 0 };

  g_return_val_if_fail (jid != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (resource != NULL)
    {
      gsize len = strlen (resource);

      if (!check_utf8 (resource, len, JID_RESOURCE, error)
          || !prep_text (resource, len, JID_RESOURCE, &rp, error))
        return NULL;
    }
  return jid_assemble (jid->local, local_len (jid),
                       jid->domain, strlen (jid->domain), rp.str, rp.len);
}

gboolean
myna_jid_equal (gconstpointer a, gconstpointer b)
{
  const MynaJid *ja = a;
  const MynaJid *jb = b;

  g_return_val_if_fail (ja != NULL && jb != NULL, FALSE);

  return ja == jb
         || (ja->hash == jb->hash && ja->full_len == jb->full_len
             && memcmp (ja->full, jb->full, ja->full_len) == 0);
}

guint
myna_jid_hash (gconstpointer jid)
{
  g_return_val_if_fail (jid != NULL, 0);
  return ((const MynaJid *) jid)->hash;
}

gboolean
myna_jid_bare_equal (const MynaJid *a, const MynaJid *b)
{
  g_return_val_if_fail (a != NULL && b != NULL, FALSE);

  return a->bare_len == b->bare_len
         && memcmp (a->bare, b->bare, a->bare_len) == 0;
}

/* Runs @prep on the whole of @str and returns a copy of the result. */
static char *
prep_public (const char *str, JidPartKind kind, GError **error)
{
  g_auto(JidPart) part = { 0 };
  gsize len = strlen (str);
  gboolean ok;

  if (!check_utf8 (str, len, kind, error))
    return NULL;
  if (kind == JID_DOMAIN)
    ok = prep_domain (str, len, &part, error);
  else
    ok = prep_text (str, len, kind, &part, error);
  if (!ok)
    return NULL;
  if (part.owned != NULL)
    return g_steal_pointer (&part.owned);
  return g_strndup (part.str, part.len);
}

char *
myna_jid_prep_local (const char *local, GError **error)
{
  g_return_val_if_fail (local != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  return prep_public (local, JID_LOCAL, error);
}

char *
myna_jid_prep_domain (const char *domain, GError **error)
{
  g_return_val_if_fail (domain != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  return prep_public (domain, JID_DOMAIN, error);
}

char *
myna_jid_prep_resource (const char *resource, GError **error)
{
  g_return_val_if_fail (resource != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  return prep_public (resource, JID_RESOURCE, error);
}
