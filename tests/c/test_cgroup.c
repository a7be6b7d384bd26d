/* cnnc_get_cpu_quota against fake cgroup trees: v2 and v1 layouts, a quota
 * on an ancestor, a container's mount of its own cgroup, no quota, files
 * that cannot be parsed. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check.h"

static char tree[256];

static void make_dirs(const char *relative)
{
    char path[1024];
    snprintf(path, sizeof path, "%s%s", tree, relative);
    for (char *p = path + 1; *p; ++p)
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0700);
            *p = '/';
        }
    mkdir(path, 0700);
}

static void write_file(const char *relative, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s%s", tree, relative);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    make_dirs(path + strlen(tree));
    *slash = '/';
    FILE *file = fopen(path, "w");
    CHECK(file != NULL);
    if (file) {
        fputs(text, file);
        fclose(file);
    }
}

static void remove_tree(void)
{
    char command[512];
    snprintf(command, sizeof command, "rm -rf '%s'", tree);
    CHECK(system(command) == 0);
}

static const char *const mounts_v2 =
    "22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
    "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";

static void test_v2(void)
{
    write_file("/proc/self/mountinfo", mounts_v2);
    write_file("/proc/self/cgroup", "0::/user.slice/job\n");
    CHECK(cnnc_get_cpu_quota(tree) == 0); /* no cpu.max anywhere: no quota */
    write_file("/sys/fs/cgroup/user.slice/job/cpu.max", "max 100000\n");
    CHECK(cnnc_get_cpu_quota(tree) == 0);
    write_file("/sys/fs/cgroup/user.slice/job/cpu.max", "150000 100000\n");
    CHECK(cnnc_get_cpu_quota(tree) == 2); /* 1.5 CPUs: rounded up */
    write_file("/sys/fs/cgroup/user.slice/job/cpu.max", "400000 100000\n");
    CHECK(cnnc_get_cpu_quota(tree) == 4);
    write_file("/sys/fs/cgroup/user.slice/cpu.max", "50000 100000\n");
    CHECK(cnnc_get_cpu_quota(tree) == 1); /* the parent's quota binds */
    write_file("/sys/fs/cgroup/user.slice/cpu.max", "300000 100000\n");
    CHECK(cnnc_get_cpu_quota(tree) == 3);
    write_file("/sys/fs/cgroup/user.slice/cpu.max", "max 100000\n");
    write_file("/sys/fs/cgroup/user.slice/job/cpu.max", "1 100000\n");
    CHECK(cnnc_get_cpu_quota(tree) == 1); /* never below one CPU */
    write_file("/sys/fs/cgroup/user.slice/job/cpu.max", "9223372036854775807 1\n");
    CHECK(cnnc_get_cpu_quota(tree) == 1 << 20); /* clamped, not wrapped */
    static const char *const unreadable[] = {"", "garbage", "100000", "-5 100000", "100000 0",
                                             "99999999999999999999999 1", "max"};
    for (size_t i = 0; i < sizeof unreadable / sizeof unreadable[0]; ++i) {
        write_file("/sys/fs/cgroup/user.slice/job/cpu.max", unreadable[i]);
        CHECK(cnnc_get_cpu_quota(tree) == 0);
    }
    /* A container: its cgroup namespace shows its own cgroup as "/", the
     * quota sits at the mount point. */
    write_file("/proc/self/cgroup", "0::/\n");
    write_file("/sys/fs/cgroup/cpu.max", "200000 100000\n");
    CHECK(cnnc_get_cpu_quota(tree) == 2);
    remove_tree();
}

static void test_v1(void)
{
    write_file("/proc/self/mountinfo",
               "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
               "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
               "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n");
    write_file("/proc/self/cgroup", "3:cpuset:/other\n2:cpu,cpuacct:/bg\n1:name=systemd:/\n");
    /* cpuset is not cpu: its files are never read. */
    write_file("/sys/fs/cgroup/cpuset/other/cpu.cfs_quota_us", "100000\n");
    write_file("/sys/fs/cgroup/cpuset/other/cpu.cfs_period_us", "100000\n");
    write_file("/sys/fs/cgroup/cpu,cpuacct/bg/cpu.cfs_quota_us", "-1\n");
    write_file("/sys/fs/cgroup/cpu,cpuacct/bg/cpu.cfs_period_us", "100000\n");
    CHECK(cnnc_get_cpu_quota(tree) == 0);
    write_file("/sys/fs/cgroup/cpu,cpuacct/bg/cpu.cfs_quota_us", "250000\n");
    CHECK(cnnc_get_cpu_quota(tree) == 3);
    write_file("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "100000\n");
    write_file("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "50000\n");
    CHECK(cnnc_get_cpu_quota(tree) == 2); /* the root's quota, read the same way */
    remove_tree();

    /* A container's v1 mount shows its own cgroup (the mount's root) at the
     * mount point; the mount point's name holds an escaped blank. */
    write_file("/proc/self/mountinfo",
               "40 31 0:29 /docker/abc /sys/fs/cgroup/cpu\\040x rw - cgroup cgroup rw,cpuacct,cpu\n");
    write_file("/proc/self/cgroup", "5:cpuacct,cpu:/docker/abc\n");
    write_file("/sys/fs/cgroup/cpu x/cpu.cfs_quota_us", "150000\n");
    write_file("/sys/fs/cgroup/cpu x/cpu.cfs_period_us", "100000\n");
    CHECK(cnnc_get_cpu_quota(tree) == 2);
    remove_tree();
}

static void test_both_and_missing(void)
{
    CHECK(cnnc_get_cpu_quota(tree) == 0); /* nothing there at all */
    CHECK(cnnc_get_cpu_quota("/nonexistent/cnnc-root") == 0);
    /* v1 cpu hierarchy and v2 both mounted: the smaller quota. */
    write_file("/proc/self/mountinfo",
               "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"
               "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n");
    write_file("/proc/self/cgroup", "1:cpu:/a\n0::/b\n");
    write_file("/sys/fs/cgroup/cpu/a/cpu.cfs_quota_us", "600000\n");
    write_file("/sys/fs/cgroup/cpu/a/cpu.cfs_period_us", "100000\n");
    write_file("/sys/fs/cgroup/unified/b/cpu.max", "300000 100000\n");
    CHECK(cnnc_get_cpu_quota(tree) == 3);
    remove_tree();
}

/* The system's own quota bounds the usable CPUs. */
static void test_system(void)
{
    const int quota = cnnc_get_cpu_quota(NULL);
    CHECK(quota >= 0);
    CHECK(cnnc_get_cpu_quota("/") == quota);
    if (quota > 0)
        CHECK(cnnc_get_usable_cpus() <= quota);
}

int main(void)
{
#if defined(__linux__)
    snprintf(tree, sizeof tree, "%s/cnnc-cgroup-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tree)) {
        perror("mkdtemp");
        return 1;
    }
    test_v2();
    test_v1();
    test_both_and_missing();
    remove_tree();
    test_system();
#endif
    return check_finish("test_cgroup");
}
