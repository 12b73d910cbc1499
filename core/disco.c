/* disco.c: what a host answers to service discovery — the identities,
 * items and XEP-0128 extension forms modules registered on it (each
 * entry remembers its owner, so an unload removes exactly its own), and
 * the sorted, de-duplicated views the disco module answers from.  The
 * core registers one kind of entry itself: each component's domain as an
 * item of the main hosts (owner NULL). */
#include "private.h"

#include <string.h>

#define NS_DATA "jabber:x:data"

typedef struct {
  MynaDiscoIdentity pub;       /* first: the getters hand out &entry->pub */
  MynaModule       *owner;
} DiscoIdentityEntry;

typedef struct {
  MynaDiscoItem pub;
  MynaModule   *owner;
} DiscoItemEntry;

typedef struct {
  MynaStanza *form;
  char       *form_type;
  MynaModule *owner;
} DiscoExtensionEntry;

static void
identity_entry_free (DiscoIdentityEntry *e)
{
  g_free ((char *) e->pub.category);
  g_free ((char *) e->pub.type);
  g_free ((char *) e->pub.name);
  g_free (e);
}

static void
item_entry_free (DiscoItemEntry *e)
{
  g_free ((char *) e->pub.jid);
  g_free ((char *) e->pub.node);
  g_free ((char *) e->pub.name);
  g_free (e);
}

static void
extension_entry_free (DiscoExtensionEntry *e)
{
  myna_stanza_unref (e->form);
  g_free (e->form_type);
  g_free (e);
}

void
myna_host_disco_init (MynaHost *host)
{
  host->identities = g_ptr_array_new_with_free_func ((GDestroyNotify) identity_entry_free);
  host->account_identities = g_ptr_array_new_with_free_func ((GDestroyNotify) identity_entry_free);
  host->disco_items = g_ptr_array_new_with_free_func ((GDestroyNotify) item_entry_free);
  host->disco_extensions = g_ptr_array_new_with_free_func ((GDestroyNotify) extension_entry_free);
}

void
myna_host_disco_clear (MynaHost *host)
{
  g_clear_pointer (&host->identities, g_ptr_array_unref);
  g_clear_pointer (&host->account_identities, g_ptr_array_unref);
  g_clear_pointer (&host->disco_items, g_ptr_array_unref);
  g_clear_pointer (&host->disco_extensions, g_ptr_array_unref);
}

/* ---- registration ---------------------------------------------------------- */

/* Adds an identity entry owned by @owner to @array. */
static void
identity_add (GPtrArray *array, MynaModule *owner, const char *category,
              const char *type, const char *name)
{
  DiscoIdentityEntry *e = g_new0 (DiscoIdentityEntry, 1);

  e->pub.category = g_strdup (category);
  e->pub.type = g_strdup (type);
  e->pub.name = g_strdup (name);
  e->owner = owner;
  g_ptr_array_add (array, e);
}

void
myna_host_add_identity (MynaHost *host, MynaModule *owner, const char *category,
                        const char *type, const char *name)
{
  identity_add (host->identities, owner, category, type, name);
}

void
myna_host_add_account_identity (MynaHost *host, MynaModule *owner, const char *category,
                                const char *type, const char *name)
{
  identity_add (host->account_identities, owner, category, type, name);
}

void
myna_host_add_disco_item (MynaHost *host, MynaModule *owner, const char *jid,
                          const char *node, const char *name)
{
  /* The same (jid, node) from the same owner again replaces the name: a
   * module registering an item per attach or per reload adds nothing. */
  for (guint i = 0; i < host->disco_items->len; i++)
    {
      DiscoItemEntry *old = host->disco_items->pdata[i];
      if (old->owner == owner && g_strcmp0 (old->pub.jid, jid) == 0
          && g_strcmp0 (old->pub.node, node) == 0)
        {
          g_free ((char *) old->pub.name);
          old->pub.name = g_strdup (name);
          return;
        }
    }

  DiscoItemEntry *e = g_new0 (DiscoItemEntry, 1);

  e->pub.jid = g_strdup (jid);
  e->pub.node = g_strdup (node);
  e->pub.name = g_strdup (name);
  e->owner = owner;
  g_ptr_array_add (host->disco_items, e);
}

/* The value of @form's hidden FORM_TYPE field (XEP-0068), or NULL. */
static const char *
form_type_of (MynaStanza *form)
{
  for (guint i = 0; i < myna_stanza_get_n_children (form); i++)
    {
      MynaStanza *f = myna_stanza_get_child_nth (form, i);
      if (myna_stanza_is_text (f) || g_strcmp0 (myna_stanza_get_name (f), "field") != 0
          || g_strcmp0 (myna_stanza_get_attr (f, "var"), "FORM_TYPE") != 0)
        continue;
      if (g_strcmp0 (myna_stanza_get_attr (f, "type"), "hidden") != 0)
        return NULL;
      return myna_stanza_get_child_text (f, "value");
    }
  return NULL;
}

gboolean
myna_host_add_disco_extension (MynaHost *host, MynaModule *owner, MynaStanza *form)
{
  const char *who = myna_module_owner_name (owner);

  if (g_strcmp0 (myna_stanza_get_name (form), "x") != 0
      || g_strcmp0 (myna_stanza_get_ns (form), NS_DATA) != 0
      || g_strcmp0 (myna_stanza_get_type (form), "result") != 0)
    {
      g_warning ("host %s: %s: a disco extension must be <x xmlns='" NS_DATA
                 "' type='result'/>; ignored", host->name, who);
      return FALSE;
    }
  const char *form_type = form_type_of (form);
  if (form_type == NULL || *form_type == '\0')
    {
      g_warning ("host %s: %s: a disco extension needs a hidden FORM_TYPE field with a "
                 "value (XEP-0128); ignored", host->name, who);
      return FALSE;
    }
  for (guint i = 0; i < host->disco_extensions->len; i++)
    {
      DiscoExtensionEntry *o = host->disco_extensions->pdata[i];
      if (strcmp (o->form_type, form_type) == 0)
        {
          g_warning ("host %s: %s: the disco extension %s is already registered by %s; "
                     "ignored", host->name, who, form_type, myna_module_owner_name (o->owner));
          return FALSE;
        }
    }

  DiscoExtensionEntry *e = g_new0 (DiscoExtensionEntry, 1);
  e->form = myna_stanza_copy (form);
  e->form_type = g_strdup (form_type);
  e->owner = owner;
  g_ptr_array_add (host->disco_extensions, e);
  return TRUE;
}

/* Removes the entries of @array whose owner (found at @owner_offset in
 * each entry) is @owner. */
static void
remove_owned (GPtrArray *array, gsize owner_offset, MynaModule *owner)
{
  for (guint i = array->len; i > 0; i--)
    {
      MynaModule **o = G_STRUCT_MEMBER_P (array->pdata[i - 1], owner_offset);
      if (*o == owner)
        g_ptr_array_remove_index (array, i - 1);
    }
}

void
myna_host_remove_disco (MynaHost *host, MynaModule *owner)
{
  g_return_if_fail (owner != NULL);

  remove_owned (host->identities, G_STRUCT_OFFSET (DiscoIdentityEntry, owner), owner);
  remove_owned (host->account_identities, G_STRUCT_OFFSET (DiscoIdentityEntry, owner), owner);
  remove_owned (host->disco_items, G_STRUCT_OFFSET (DiscoItemEntry, owner), owner);
  remove_owned (host->disco_extensions, G_STRUCT_OFFSET (DiscoExtensionEntry, owner), owner);
}

/* ---- the views ---------------------------------------------------------------- */

static int
cmp_nullable (const char *a, const char *b)
{
  return g_strcmp0 (a != NULL ? a : "", b != NULL ? b : "");
}

static int
identity_cmp (gconstpointer a, gconstpointer b)
{
  const MynaDiscoIdentity *x = *(const MynaDiscoIdentity **) a;
  const MynaDiscoIdentity *y = *(const MynaDiscoIdentity **) b;
  int c = strcmp (x->category, y->category);

  if (c == 0)
    c = strcmp (x->type, y->type);
  return c != 0 ? c : cmp_nullable (x->name, y->name);
}

static int
item_cmp (gconstpointer a, gconstpointer b)
{
  const MynaDiscoItem *x = *(const MynaDiscoItem **) a;
  const MynaDiscoItem *y = *(const MynaDiscoItem **) b;
  int c = strcmp (x->jid, y->jid);

  return c != 0 ? c : cmp_nullable (x->node, y->node);
}

static int
extension_cmp (gconstpointer a, gconstpointer b)
{
  const DiscoExtensionEntry *x = *(const DiscoExtensionEntry **) a;
  const DiscoExtensionEntry *y = *(const DiscoExtensionEntry **) b;

  return strcmp (x->form_type, y->form_type);
}

/* Sorts @array with @cmp and drops neighbours @cmp finds equal. */
static GPtrArray *
sort_unique (GPtrArray *array, GCompareFunc cmp)
{
  g_ptr_array_sort (array, cmp);
  for (guint i = array->len; i > 1; i--)
    if (cmp (&array->pdata[i - 2], &array->pdata[i - 1]) == 0)
      g_ptr_array_remove_index (array, i - 1);
  return array;
}

GPtrArray *
myna_host_get_identities (MynaHost *host)
{
  g_return_val_if_fail (host != NULL, NULL);

  GPtrArray *out = g_ptr_array_sized_new (host->identities->len);
  for (guint i = 0; i < host->identities->len; i++)
    g_ptr_array_add (out, &((DiscoIdentityEntry *) host->identities->pdata[i])->pub);
  return sort_unique (out, identity_cmp);
}

GPtrArray *
myna_host_get_account_identities (MynaHost *host)
{
  g_return_val_if_fail (host != NULL, NULL);

  GPtrArray *out = g_ptr_array_sized_new (host->account_identities->len);
  for (guint i = 0; i < host->account_identities->len; i++)
    g_ptr_array_add (out, &((DiscoIdentityEntry *) host->account_identities->pdata[i])->pub);
  return sort_unique (out, identity_cmp);
}

GPtrArray *
myna_host_get_disco_items (MynaHost *host)
{
  g_return_val_if_fail (host != NULL, NULL);

  GPtrArray *out = g_ptr_array_sized_new (host->disco_items->len);
  for (guint i = 0; i < host->disco_items->len; i++)
    g_ptr_array_add (out, &((DiscoItemEntry *) host->disco_items->pdata[i])->pub);
  return sort_unique (out, item_cmp);
}

GPtrArray *
myna_host_get_disco_extensions (MynaHost *host)
{
  g_return_val_if_fail (host != NULL, NULL);

  /* Not g_ptr_array_copy: the copy would free the entries with it. */
  g_autoptr(GPtrArray) entries = g_ptr_array_sized_new (host->disco_extensions->len);
  GPtrArray *out = g_ptr_array_sized_new (host->disco_extensions->len);

  for (guint i = 0; i < host->disco_extensions->len; i++)
    g_ptr_array_add (entries, host->disco_extensions->pdata[i]);
  g_ptr_array_sort (entries, extension_cmp);
  for (guint i = 0; i < entries->len; i++)
    g_ptr_array_add (out, ((DiscoExtensionEntry *) entries->pdata[i])->form);
  return out;
}

gboolean
myna_host_is_component (MynaHost *host)
{
  g_return_val_if_fail (host != NULL, FALSE);
  return host->component;
}

/* ---- answers -------------------------------------------------------------- */

void
myna_disco_info_fill (MynaStanza *query, GPtrArray *identities, GPtrArray *features,
                      GPtrArray *forms)
{
  g_return_if_fail (query != NULL);

  for (guint i = 0; identities != NULL && i < identities->len; i++)
    {
      const MynaDiscoIdentity *id = identities->pdata[i];
      MynaStanza *identity = myna_stanza_add_child (query, "identity", NULL);

      myna_stanza_set_attr (identity, "category", id->category);
      myna_stanza_set_attr (identity, "type", id->type);
      if (id->name != NULL)
        myna_stanza_set_attr (identity, "name", id->name);
    }
  for (guint i = 0; features != NULL && i < features->len; i++)
    myna_stanza_set_attr (myna_stanza_add_child (query, "feature", NULL), "var",
                          features->pdata[i]);
  for (guint i = 0; forms != NULL && i < forms->len; i++)
    myna_stanza_append (query, forms->pdata[i]);
}

void
myna_disco_items_fill (MynaStanza *query, GPtrArray *items)
{
  g_return_if_fail (query != NULL);

  for (guint i = 0; items != NULL && i < items->len; i++)
    {
      const MynaDiscoItem *it = items->pdata[i];
      MynaStanza *item = myna_stanza_add_child (query, "item", NULL);

      myna_stanza_set_attr (item, "jid", it->jid);
      if (it->node != NULL)
        myna_stanza_set_attr (item, "node", it->node);
      if (it->name != NULL)
        myna_stanza_set_attr (item, "name", it->name);
    }
}
