"""Running a computation on 1 thread and then on 2, for tests that check a
work split gives one thread's bits."""
import cnnc


def on_one_and_two_threads(run):
    """[run() on 1 thread, run() on 2 threads], the adaptive team off so that
    the team of 2 really splits the work on a busy machine; the thread count
    and the adaptive team are restored after."""
    previous, adaptive = cnnc.get_num_threads(), cnnc.get_adaptive_team()
    try:
        cnnc.set_adaptive_team(False)
        results = []
        for t in (1, 2):
            cnnc.set_num_threads(t)
            results.append(run())
    finally:
        cnnc.set_num_threads(previous)
        cnnc.set_adaptive_team(adaptive)
    return results
