/* The contention monitor's choice of what to measure
 * (src/internal/own_work_stretch.h), replayed on made-up timelines of
 * cnnc's operations and other work: every stretch it reads holds cnnc's
 * operations alone, never another library's work between them. */
#include "check.h"
#include "own_work_stretch.h"

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

int main(void)
{
    test_own_work_only();
    test_steps_between_other_work();
    test_mostly_other_work();
    test_gap_threshold();
    test_tries_bound();
    return check_finish("test_contention");
}
