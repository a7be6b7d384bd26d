/* The contention monitor's choice of what to measure
 * (src/internal/own_work_stretch.h), replayed on made-up timelines of
 * cnnc's operations and other work: every stretch it reads holds cnnc's
 * operations alone, never another library's work between them. Then its
 * choice of when to grow back (src/internal/team_growth.h), replayed on
 * timelines of samples with a neighbour coming and going. */
#include "check.h"
#include "own_work_stretch.h"
#include "team_growth.h"

typedef struct {
    own_work_stretch s;
    int64_t opened;       /* when the stretch being measured started (the last counter read) */
    int64_t read_ns;      /* stretch time added, summed by the test */
    int adds, samples, give_ups, baselines;
    int foreign_read;     /* a read stretch held other work */
    int64_t other_from, other_to; /* the last interval of other work */
} replay;

static void apply(replay *r, int action, int64_t now)
{
    switch (action) {
    case OWN_WORK_BASELINE:
        ++r->baselines;
        r->opened = now;
        break;
    case OWN_WORK_ADD:
    case OWN_WORK_ADD_SAMPLE:
        if (r->other_to > r->opened && r->other_from < now)
            r->foreign_read = 1;
        r->read_ns += now - r->opened;
        r->opened = now;
        if (action == OWN_WORK_ADD)
            ++r->adds;
        else
            ++r->samples;
        break;
    case OWN_WORK_GIVE_UP:
        ++r->give_ups;
        break;
    default:
        break;
    }
}

/* `count` operations of `length` ns with `pause` ns between them, from *now. */
static void operations(replay *r, int64_t *now, int count, int64_t length, int64_t pause)
{
    for (int i = 0; i < count && r->s.open; ++i) {
        apply(r, own_work_operation_start(&r->s, *now), *now);
        *now += length;
        apply(r, own_work_operation_end(&r->s, *now), *now);
        *now += pause;
    }
}

static void other_work(replay *r, int64_t *now, int64_t length)
{
    r->other_from = *now;
    *now += length;
    r->other_to = *now;
}

/* `count` rounds of `ops` operations (as operations()) and then `other` ns
 * of other work, while the sample lasts. */
static void rounds(replay *r, int64_t *now, int count, int ops, int64_t length, int64_t pause, int64_t other)
{
    for (int i = 0; i < count && r->s.open; ++i) {
        operations(r, now, ops, length, pause);
        other_work(r, now, other);
    }
}

static void begin(replay *r, int64_t now)
{
    memset(r, 0, sizeof *r);
    r->other_from = r->other_to = -1;
    apply(r, own_work_begin(&r->s, now), now);
}

/* cnnc alone: one stretch of the sample's length, read twice in all. */
static void test_own_work_only(void)
{
    replay r;
    int64_t now = 1000;
    begin(&r, now);
    operations(&r, &now, 1000, 80000, 20000); /* 80 us operations, 20 us of Python between them */
    CHECK(r.samples == 1 && r.adds == 0 && r.give_ups == 0);
    CHECK(r.baselines == 1);
    CHECK(r.read_ns >= OWN_WORK_SAMPLE_NS && r.read_ns < OWN_WORK_SAMPLE_NS + 100000);
    CHECK(!r.foreign_read);
    CHECK(!r.s.open);
}

/* Training steps of 1.5 ms between another library's 10 ms matrix
 * products: the stretches read lie within the steps, and the sample
 * completes. */
static void test_steps_between_other_work(void)
{
    replay r;
    int64_t now = 5000;
    begin(&r, now);
    rounds(&r, &now, 100, 15, 80000, 20000, 10000000);
    CHECK(r.samples == 1 && r.give_ups == 0);
    CHECK(!r.foreign_read);
    CHECK(r.read_ns >= OWN_WORK_SAMPLE_NS);
    CHECK(r.baselines >= 2); /* the first stretch held other work and was dropped */
}

/* Other work with now and then a short operation of cnnc's: nothing is
 * read, and the sample gives up after its tries. */
static void test_mostly_other_work(void)
{
    replay r;
    int64_t now = 0;
    begin(&r, now);
    rounds(&r, &now, 100, 1, 50000, 0, 5000000);
    CHECK(r.give_ups == 1 && r.samples == 0 && r.adds == 0);
    CHECK(r.read_ns == 0);
    CHECK(!r.s.open);
}

/* A pause of OWN_WORK_GAP_NS is cnnc's own; a longer one is other work. */
static void test_gap_threshold(void)
{
    own_work_stretch s;
    own_work_begin(&s, 0);
    CHECK(own_work_operation_start(&s, OWN_WORK_GAP_NS) == OWN_WORK_NOTHING);
    CHECK(own_work_operation_end(&s, OWN_WORK_GAP_NS + 1000) == OWN_WORK_NOTHING);
    CHECK(own_work_operation_start(&s, 2 * OWN_WORK_GAP_NS + 1000) == OWN_WORK_NOTHING);
    CHECK(own_work_operation_end(&s, 2 * OWN_WORK_GAP_NS + 2000) == OWN_WORK_NOTHING);
    CHECK(own_work_operation_start(&s, 3 * OWN_WORK_GAP_NS + 2001) == OWN_WORK_BASELINE);
    CHECK(s.short_target && s.tries == 2);
    /* After it, stretches are read at OWN_WORK_SHORT_NS. */
    const int64_t t0 = 3 * OWN_WORK_GAP_NS + 2001;
    CHECK(own_work_operation_end(&s, t0 + OWN_WORK_SHORT_NS - 1) == OWN_WORK_NOTHING);
    CHECK(own_work_operation_start(&s, t0 + OWN_WORK_SHORT_NS) == OWN_WORK_NOTHING);
    CHECK(own_work_operation_end(&s, t0 + 2 * OWN_WORK_SHORT_NS) == OWN_WORK_ADD);
    /* Outside a sample nothing is asked. */
    own_work_stretch closed = {0};
    CHECK(own_work_operation_start(&closed, 1000000000) == OWN_WORK_NOTHING);
    CHECK(own_work_operation_end(&closed, 1000000000) == OWN_WORK_NOTHING);
}

/* Short stretches that never add up end the sample at its last try, with
 * what they read. */
static void test_tries_bound(void)
{
    replay r;
    int64_t now = 0;
    begin(&r, now);
    rounds(&r, &now, 1000, 1, OWN_WORK_SHORT_NS / 4, 0, 1000000);
    CHECK(r.samples + r.give_ups == 1);
    CHECK(r.s.tries <= OWN_WORK_MAX_TRIES + 1);
    CHECK(!r.foreign_read);
}

/* ---- growing back ----------------------------------------------------
 * A team of 2 on 2 CPUs, one sample after another. A busy neighbour holds
 * one core: the waits of 2 running threads then ask for 1 (a thread waits
 * half its runnable time), while 1 running thread waits for nothing and
 * asks for 2 (it cannot see the other core). The runnable count sees the
 * neighbour when `counted`, and the team's running threads. */
typedef struct {
    team_growth t;
    int samples, grown, shrunk;
    int contended; /* samples run on 2 threads beside the neighbour: each a probe's cost */
} growth_replay;

static int sample(growth_replay *g, int neighbour, int counted, int count_read)
{
    const int team = 2, cpus = 2;
    const int running = g->t.adapted > 0 && g->t.adapted < team ? g->t.adapted : team;
    double share = neighbour && running == 2 ? 0.5 : 0.0;
    const int chosen = cnnc_threads_under_contention(team, cpus, &share, 1);
    const double runnable = running + (neighbour && counted ? 1.0 : 0.0);
    const int free_cpus = count_read ? team_growth_free_cpus(runnable, running, cpus, team) : 0;
    const int next = team_growth_decide(&g->t, team, chosen, free_cpus);
    ++g->samples;
    g->contended += neighbour && running == 2;
    g->grown += next > running;
    g->shrunk += next < running;
    return next;
}

/* The rule before the runnable count: what a team with no count (or one
 * that always sees the neighbour) must still do, sample for sample. */
typedef struct {
    int adapted, last_grew, probe_wait, probe_backoff;
} backoff_only;

static int backoff_only_decide(backoff_only *b, int chosen)
{
    int running = b->adapted > 0 && b->adapted < 2 ? b->adapted : 2;
    if (chosen > running) {
        if (b->probe_wait > 0) {
            --b->probe_wait;
            chosen = running;
        }
    } else if (chosen < running && b->last_grew) {
        b->probe_backoff = b->probe_backoff * 2 > TEAM_MAX_PROBE_WAIT ? TEAM_MAX_PROBE_WAIT : b->probe_backoff * 2;
        b->probe_wait = b->probe_backoff;
    } else if (chosen == running && b->last_grew) {
        b->probe_backoff = 1;
    }
    b->last_grew = chosen > running;
    b->adapted = chosen;
    return chosen;
}

/* A neighbour that stays: the team shrinks and its probes back off to one
 * per TEAM_MAX_PROBE_WAIT samples, whether or not the count is read, the
 * same choices as the backoff alone. */
static void test_growth_busy_neighbour_keeps_backoff(void)
{
    for (int count_read = 0; count_read < 2; ++count_read) {
        growth_replay g = {0};
        backoff_only ref = {0, 0, 0, 1};
        int same = 1, last = 2;
        for (int i = 0; i < 2000; ++i) {
            const int running = ref.adapted > 0 && ref.adapted < 2 ? ref.adapted : 2;
            double share = running == 2 ? 0.5 : 0.0;
            const int want = backoff_only_decide(&ref, cnnc_threads_under_contention(2, 2, &share, 1));
            last = sample(&g, 1, 1, count_read);
            same &= last == want;
        }
        CHECK(same);
        CHECK(g.shrunk >= 1);
        /* After the first doublings, one probe per TEAM_MAX_PROBE_WAIT + 2 samples. */
        CHECK(g.contended <= 2000 / (TEAM_MAX_PROBE_WAIT + 1) + 8);
        CHECK(g.t.probe_backoff == TEAM_MAX_PROBE_WAIT);
    }
}

/* The neighbour leaves after the backoff reached its longest wait: seen by
 * the count, the team grows at the first sample and stays grown; without
 * the count it waits out the backoff, as before. */
static void test_growth_after_neighbour_leaves(void)
{
    for (int count_read = 0; count_read < 2; ++count_read) {
        growth_replay g = {0};
        for (int i = 0; i < 400; ++i)
            sample(&g, 1, 1, count_read);
        int running = g.t.adapted, first_full = -1;
        for (int i = 0; i < 100 && first_full < 0; ++i) {
            running = sample(&g, 0, 1, count_read);
            if (running == 2)
                first_full = i;
        }
        CHECK(first_full >= 0);
        if (count_read)
            CHECK(first_full == 0);
        else
            CHECK(first_full >= 1 && first_full <= TEAM_MAX_PROBE_WAIT);
        for (int i = 0; i < 200; ++i)
            CHECK(sample(&g, 0, 1, count_read) == 2);
        CHECK(g.t.probe_backoff == 1 && g.t.probe_wait == 0);
    }
}

/* A neighbour the count cannot see (it reads the machine as idle while
 * the team's threads wait): one early growth, undone, and no other until
 * the count itself sees busy CPUs; the probes are then those of the
 * backoff alone, plus that one. */
static void test_growth_count_blind_is_bounded(void)
{
    growth_replay g = {0}, plain = {0};
    for (int i = 0; i < 20; ++i) {
        sample(&g, 1, 1, 1);
        sample(&plain, 1, 1, 0);
    }
    for (int i = 0; i < 3000; ++i) {
        sample(&g, 1, 0, 1);
        sample(&plain, 1, 0, 0);
    }
    CHECK(g.contended <= plain.contended + 1);
    CHECK(g.t.early_spent);
    /* The count sees the neighbour again: early growths are allowed again
     * once it shows the CPUs free. */
    sample(&g, 1, 1, 1);
    CHECK(!g.t.early_spent);
    const int before = g.grown;
    CHECK(sample(&g, 0, 1, 1) == 2 && g.grown == before + 1);
}

/* Inference calls between another runtime's blocks: its spinning workers
 * hold both cores for a few samples, then the cores are free for a few.
 * Seen by the count, each free stretch runs on the whole team from its
 * first sample on; the backoff alone left most of them on one thread,
 * its probes falling on the busy samples and its waits on the free ones. */
static void test_growth_neighbour_comes_and_goes(void)
{
    for (int busy = 3; busy <= 5; ++busy) {
        growth_replay seen = {0}, unseen = {0};
        int full_seen = 0, full_unseen = 0, free_samples = 0;
        for (int round = 0; round < 200; ++round) {
            for (int i = 0; i < busy; ++i) {
                sample(&seen, 1, 1, 1);
                sample(&unseen, 1, 1, 0);
            }
            for (int i = 0; i < 4; ++i) {
                const int a = sample(&seen, 0, 1, 1), b = sample(&unseen, 0, 1, 0);
                ++free_samples;
                full_seen += a == 2;
                full_unseen += b == 2;
            }
        }
        CHECK(full_seen == free_samples);
        /* The backoff alone: a probe on the last busy sample leaves the
         * first free ones on one thread (3 busy samples: half of them). */
        if (busy == 3)
            CHECK(full_unseen == free_samples / 2);
        /* The same samples run contended either way: the first of each busy
         * stretch (before the shrink) and one probe. */
        CHECK(seen.contended == unseen.contended && seen.contended == 2 * 200);
    }
}

static void test_growth_free_cpus(void)
{
    CHECK(team_growth_free_cpus(-1.0, 1, 2, 2) == 0);
    CHECK(team_growth_free_cpus(1.0, 1, 2, 2) == 2);  /* only the team's own thread */
    CHECK(team_growth_free_cpus(2.0, 1, 2, 2) == 1);  /* one other task */
    CHECK(team_growth_free_cpus(1.4, 1, 2, 2) == 2);  /* seen in under half the reads */
    CHECK(team_growth_free_cpus(1.6, 1, 2, 2) == 1);
    CHECK(team_growth_free_cpus(9.0, 1, 2, 2) == 1);  /* never below 1 */
    CHECK(team_growth_free_cpus(0.0, 1, 2, 2) == 2);  /* counted before the thread ran */
    CHECK(team_growth_free_cpus(3.0, 2, 16, 8) == 8); /* never above the team */
    CHECK(team_growth_free_cpus(12.0, 2, 16, 8) == 6);
}

static void test_growth_parse_loadavg(void)
{
    CHECK(team_growth_parse_loadavg("0.52 0.58 0.59 3/117 4242\n") == 3);
    CHECK(team_growth_parse_loadavg("12.00 9.10 8.00 140/2301 99") == 140);
    CHECK(team_growth_parse_loadavg("0.00 0.00 0.00 0/1 1") == 0);
    CHECK(team_growth_parse_loadavg("") == -1);
    CHECK(team_growth_parse_loadavg("0.52 0.58 0.59") == -1);
    CHECK(team_growth_parse_loadavg("0.52 0.58 0.59 ") == -1);
    CHECK(team_growth_parse_loadavg("0.52 0.58 0.59 3 117") == -1);
    CHECK(team_growth_parse_loadavg("0.52 0.58 0.59 -3/117") == -1);
    CHECK(team_growth_parse_loadavg("0.52 0.58 0.59 /117") == -1);
    CHECK(team_growth_parse_loadavg("0.52 0.58 0.59 99999999999999999999/1") == -1);
}

int main(void)
{
    test_own_work_only();
    test_steps_between_other_work();
    test_mostly_other_work();
    test_gap_threshold();
    test_tries_bound();
    test_growth_busy_neighbour_keeps_backoff();
    test_growth_after_neighbour_leaves();
    test_growth_count_blind_is_bounded();
    test_growth_neighbour_comes_and_goes();
    test_growth_free_cpus();
    test_growth_parse_loadavg();
    return check_finish("test_contention");
}
