/* When the adaptive team (src/core/contention.c) grows back after shrinking:
 * pure header logic, so that tests can replay timelines of samples.
 *
 * A shrunk team cannot see whether the cores it left are still busy: its
 * running threads wait for nothing either way. So a growth is a probe,
 * judged by the next sample, and a growth that sample undoes makes the next
 * one wait twice as many samples (up to TEAM_MAX_PROBE_WAIT). Samples are
 * taken only while cnnc works, so that wait can outlast the neighbour by
 * far: short inference calls between another runtime's calls (whose
 * workers spin for tens of milliseconds after each) ran on 1 of 2 threads
 * for 41 of 52 calls long after the other runtime had stopped.
 *
 * The machine's count of runnable tasks, read while the sample's stretches
 * are measured, sees the cores the team left: a neighbour that needs the CPU
 * is runnable whenever it is read, and one that left is not. When that count
 * leaves CPUs free for a larger team, the growth is tried at once, before
 * its wait runs out. The count is a snapshot and counts tasks of unknown
 * need, so the growth stays a probe: if the next sample undoes it, no early
 * growth is tried again until the count itself has seen the CPUs busy (or a
 * growth held). A neighbour that stays busy is always counted, so a team
 * it shrank keeps its backoff and pays no extra probes. */
#ifndef CNNC_TEAM_GROWTH_H
#define CNNC_TEAM_GROWTH_H

#define TEAM_MAX_PROBE_WAIT 32 /* samples (1.6 s of cnnc's work) between failed growths, at most */

typedef struct {
    int adapted;       /* threads the last sample chose; 0: none yet (the whole team) */
    int last_grew;     /* the last sample grew the team */
    int grew_early;    /* ... before its wait ran out, on the runnable count */
    int probe_wait;    /* samples left before the next growth */
    int probe_backoff; /* probe_wait after the next undone growth; 0 reads as 1 */
    int early_spent;   /* an early growth was undone: none until the count sees busy CPUs */
} team_growth;

/* The threads a team of `team` runs on now: the last choice, or the whole
 * team before any. */
static inline int team_growth_running(const team_growth *t, int team)
{
    return t->adapted > 0 && t->adapted < team ? t->adapted : team;
}

/* The threads a team of `team` runs on after a sample: `chosen` is what the
 * waits of its threads ask for (cnnc_threads_under_contention), `free_cpus`
 * how many threads the runnable count leaves CPUs for (0: not read). */
static inline int team_growth_decide(team_growth *t, int team, int chosen, int free_cpus)
{
    const int running = team_growth_running(t, team);
    int early = 0;
    if (free_cpus > 0 && free_cpus <= running && running < team)
        t->early_spent = 0; /* the count sees the CPUs busy: it tells the neighbour apart */
    if (t->probe_backoff < 1)
        t->probe_backoff = 1;
    if (chosen > running) {
        if (t->probe_wait > 0 && !t->early_spent && free_cpus > running) {
            t->probe_wait = 0;
            early = 1;
            if (chosen > free_cpus)
                chosen = free_cpus;
        } else if (t->probe_wait > 0) {
            --t->probe_wait;
            chosen = running;
        }
    } else if (chosen < running && t->last_grew) {
        t->probe_backoff = t->probe_backoff * 2 > TEAM_MAX_PROBE_WAIT ? TEAM_MAX_PROBE_WAIT : t->probe_backoff * 2;
        t->probe_wait = t->probe_backoff;
        if (t->grew_early)
            t->early_spent = 1;
    } else if (chosen == running && t->last_grew) {
        t->probe_backoff = 1; /* the growth held */
        t->early_spent = 0;
    }
    t->last_grew = chosen > running;
    t->grew_early = early && t->last_grew;
    t->adapted = chosen;
    return chosen;
}

/* Threads the CPUs leave room for when `runnable` tasks were counted on
 * average (the machine's, the team's `running` threads among them), on
 * `cpus` usable CPUs: round(cpus - others), at least 1 and at most team;
 * 0 when nothing was counted (runnable < 0). */
static inline int team_growth_free_cpus(double runnable, int running, int cpus, int team)
{
    if (!(runnable >= 0.0))
        return 0;
    double others = runnable - (double)running;
    if (others < 0.0)
        others = 0.0;
    const double free_cpus = (double)cpus - others + 0.5;
    return free_cpus < 1.0 ? 1 : free_cpus >= (double)team ? team : (int)free_cpus;
}

/* The runnable tasks in the text of /proc/loadavg ("0.52 0.58 0.59 3/117
 * 4242": the 4th field, before its '/'), or -1 when the text is not that. */
static inline int team_growth_parse_loadavg(const char *text)
{
    const char *p = text;
    for (int field = 0; field < 3; ++field) {
        while (*p && *p != ' ')
            ++p;
        if (*p != ' ')
            return -1;
        ++p;
    }
    long runnable = 0;
    const char *digits = p;
    while (*p >= '0' && *p <= '9') {
        runnable = runnable * 10 + (*p++ - '0');
        if (runnable > 1000000000L)
            return -1;
    }
    return p == digits || *p != '/' ? -1 : (int)runnable;
}

#endif
