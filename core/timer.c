/* timer.c: a hashed timer wheel, one GSource per thread for all MynaTimers.
 *
 * Slots are MYNA_TIMER_RESOLUTION_MS wide; a timer further away than one
 * turn of the wheel waits out whole turns (its `rounds`).  A bitmap of
 * non-empty slots lets the source sleep until the next slot that holds a
 * timer instead of ticking through empty ones. */
#include "private.h"

#define WHEEL_BITS  12
#define WHEEL_SLOTS (1u << WHEEL_BITS)
#define WHEEL_MASK  (WHEEL_SLOTS - 1)
#define WORD_BITS   64

struct _MynaTimer {
  MynaTimer    *prev, *next;
  MynaTimerFunc func;
  gpointer      user_data;
  MynaModule   *owner;        /* the module that made it, NULL for the core */
  guint64       expires;      /* absolute tick */
  guint32       slot;
  gboolean      active;
};

typedef struct {
  GSource    source;
  MynaTimer *slots[WHEEL_SLOTS];
  guint64    bitmap[WHEEL_SLOTS / WORD_BITS];
  guint64    now_tick;        /* every tick before this has been run */
  gint64     origin_us;       /* monotonic time of tick 0 */
  guint      active;
  MynaTimer *running;         /* the timer whose callback is running */
  gboolean   running_freed;
} Wheel;

static GPrivate wheel_key;

static guint64
wheel_tick_of (Wheel *w, gint64 time_us)
{
  return (guint64) ((time_us - w->origin_us) / (MYNA_TIMER_RESOLUTION_MS * 1000));
}

static void
wheel_unlink (Wheel *w, MynaTimer *t)
{
  if (t->prev != NULL)
    t->prev->next = t->next;
  else
    {
      w->slots[t->slot] = t->next;
      if (t->next == NULL)
        w->bitmap[t->slot / WORD_BITS] &= ~(G_GUINT64_CONSTANT (1) << (t->slot % WORD_BITS));
    }
  if (t->next != NULL)
    t->next->prev = t->prev;
  t->prev = t->next = NULL;
  t->active = FALSE;
  w->active--;
}

static void
wheel_link (Wheel *w, MynaTimer *t)
{
  t->slot = (guint32) (t->expires & WHEEL_MASK);
  t->prev = NULL;
  t->next = w->slots[t->slot];
  if (t->next != NULL)
    t->next->prev = t;
  w->slots[t->slot] = t;
  w->bitmap[t->slot / WORD_BITS] |= G_GUINT64_CONSTANT (1) << (t->slot % WORD_BITS);
  t->active = TRUE;
  w->active++;
}

/* Ticks from now_tick to the next non-empty slot (at most one turn). */
static guint64
wheel_next_delta (Wheel *w)
{
  for (guint32 d = 0; d < WHEEL_SLOTS;)
    {
      guint32 s = (guint32) ((w->now_tick + d) & WHEEL_MASK);
      guint64 bits = w->bitmap[s / WORD_BITS] >> (s % WORD_BITS);

      if (bits != 0)
        return d + (guint64) __builtin_ctzll (bits);
      d += WORD_BITS - (s % WORD_BITS);
    }
  return WHEEL_SLOTS;
}

static void
wheel_update_ready_time (Wheel *w)
{
  if (w->active == 0)
    {
      g_source_set_ready_time ((GSource *) w, -1);
      return;
    }
  guint64 delta = wheel_next_delta (w);
  gint64 when = w->origin_us
                + (gint64) (w->now_tick + delta + 1) * MYNA_TIMER_RESOLUTION_MS * 1000;
  g_source_set_ready_time ((GSource *) w, when);
}

static void
wheel_run_slot (Wheel *w, guint64 tick)
{
  guint32 slot = (guint32) (tick & WHEEL_MASK);
  MynaTimer *t = w->slots[slot];

  while (t != NULL)
    {
      MynaTimer *next = t->next;

      if (t->expires <= tick)
        {
          wheel_unlink (w, t);
          w->running = t;
          w->running_freed = FALSE;
          MynaModule *previous = myna_module_enter (t->owner);
          t->func (t->user_data);
          myna_module_leave (previous);
          if (w->running_freed)
            g_free (t);
          w->running = NULL;
          /* The callback may have changed the slot: restart it. */
          next = w->slots[slot];
          while (next != NULL && next->expires > tick)
            next = next->next;
        }
      t = next;
    }
}

static gboolean
wheel_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  Wheel *w = (Wheel *) source;
  guint64 target = wheel_tick_of (w, g_source_get_time (source));

  while (w->now_tick < target && w->active > 0)
    {
      guint64 delta = wheel_next_delta (w);
      if (w->now_tick + delta >= target)
        {
          w->now_tick = target;
          break;
        }
      w->now_tick += delta;
      wheel_run_slot (w, w->now_tick);
      w->now_tick++;
    }
  if (w->active == 0)
    w->now_tick = target;
  wheel_update_ready_time (w);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs wheel_funcs = {
  .dispatch = wheel_dispatch,
};

static Wheel *
wheel_get (void)
{
  Wheel *w = g_private_get (&wheel_key);

  if (w == NULL)
    {
      w = (Wheel *) g_source_new (&wheel_funcs, sizeof (Wheel));
      w->origin_us = g_get_monotonic_time ();
      g_source_set_name ((GSource *) w, "myna-timer-wheel");
      g_source_set_priority ((GSource *) w, G_PRIORITY_DEFAULT);
      g_source_attach ((GSource *) w, g_main_context_get_thread_default ());
      g_private_set (&wheel_key, w);
    }
  return w;
}

MynaTimer *
myna_timer_new_owned (MynaTimerFunc func, gpointer user_data, MynaModule *owner)
{
  g_return_val_if_fail (func != NULL, NULL);

  MynaTimer *t = g_new0 (MynaTimer, 1);
  t->func = func;
  t->user_data = user_data;
  t->owner = owner;
  return t;
}

/* A module's timers are stopped when it unloads. */
MynaTimer *
myna_timer_new (MynaTimerFunc func, gpointer user_data)
{
  return myna_timer_new_owned (func, user_data, myna_module_current ());
}

void
myna_timer_start (MynaTimer *timer, guint ms)
{
  g_return_if_fail (timer != NULL);

  Wheel *w = wheel_get ();
  gint64 now = g_get_monotonic_time ();
  guint64 ticks = (ms + MYNA_TIMER_RESOLUTION_MS - 1) / MYNA_TIMER_RESOLUTION_MS;

  if (timer->active)
    wheel_unlink (w, timer);
  /* Catch the wheel up when it slept with nothing armed. */
  if (w->active == 0)
    w->now_tick = wheel_tick_of (w, now);
  timer->expires = MAX (wheel_tick_of (w, now) + ticks + 1, w->now_tick);
  wheel_link (w, timer);
  wheel_update_ready_time (w);
}

void
myna_timer_stop (MynaTimer *timer)
{
  g_return_if_fail (timer != NULL);

  if (!timer->active)
    return;
  Wheel *w = wheel_get ();
  wheel_unlink (w, timer);
  if (w->active == 0)
    g_source_set_ready_time ((GSource *) w, -1);
}

gboolean
myna_timer_is_active (const MynaTimer *timer)
{
  return timer != NULL && timer->active;
}

void
myna_timer_free (MynaTimer *timer)
{
  if (timer == NULL)
    return;
  myna_timer_stop (timer);
  Wheel *w = g_private_get (&wheel_key);
  if (w != NULL && w->running == timer)
    {
      w->running_freed = TRUE;
      return;
    }
  g_free (timer);
}

guint
myna_timer_count_active (void)
{
  Wheel *w = g_private_get (&wheel_key);
  return w != NULL ? w->active : 0;
}

guint
myna_timers_stop_matching (MynaTimerMatch match, gpointer user_data)
{
  Wheel *w = g_private_get (&wheel_key);
  guint stopped = 0;

  for (guint32 slot = 0; w != NULL && w->active > 0 && slot < WHEEL_SLOTS; slot++)
    for (MynaTimer *t = w->slots[slot], *next; t != NULL; t = next)
      {
        next = t->next;
        if (match (t->owner, t->func, user_data))
          {
            myna_timer_stop (t);
            stopped++;
          }
      }
  return stopped;
}

void
myna_timers_advance_for_testing (gint64 us)
{
  g_return_if_fail (us >= 0);

  Wheel *w = wheel_get ();
  /* Every tick is computed from the origin: moving it back is time passing. */
  w->origin_us -= us;
  wheel_update_ready_time (w);
}
