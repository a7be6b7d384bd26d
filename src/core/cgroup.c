/* The CPU quota of the process's control group (cgroup v2 cpu.max, v1
 * cpu.cfs_quota_us / cpu.cfs_period_us): a container limited to 2 CPUs of a
 * 64-core host sees 64 CPUs in its affinity mask, and a team of 64 threads
 * there burns the period's quota in a few milliseconds and then waits,
 * every thread at once, for the next period. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cnnc_internal.h"
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CGROUP_PATH_MAX 4096
#define CGROUP_LINE_MAX 8192
/* A hierarchy holding the cpu controller: the v2 one and the v1 one. */
#define CGROUP_MAX_HIERARCHIES 2

typedef struct cgroup_hierarchy {
    int v2;
    char mount_root[CGROUP_PATH_MAX]; /* the cgroup the mount shows at its mount point */
    char mount_point[CGROUP_PATH_MAX];
} cgroup_hierarchy;

/* mountinfo escapes blanks and backslashes in paths as \ooo. */
static void unescape_octal(char *s)
{
    char *out = s;
    for (const char *in = s; *in;) {
        if (in[0] == '\\' && in[1] >= '0' && in[1] <= '3' && in[2] >= '0' && in[2] <= '7' && in[3] >= '0' &&
            in[3] <= '7') {
            *out++ = (char)((in[1] - '0') * 64 + (in[2] - '0') * 8 + (in[3] - '0'));
            in += 4;
        } else {
            *out++ = *in++;
        }
    }
    *out = '\0';
}

/* Whether the comma-separated list holds `name` as a whole item. */
static int list_has(const char *list, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = list; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t item = comma ? (size_t)(comma - p) : strlen(p);
        if (item == len && strncmp(p, name, len) == 0)
            return 1;
        p = comma ? comma + 1 : NULL;
    }
    return 0;
}

/* root + relative opened for reading; NULL where the joined path would be
 * cut short or the file cannot be read. */
static FILE *open_under(const char *root, const char *relative)
{
    char path[CGROUP_PATH_MAX];
    int n = snprintf(path, sizeof path, "%s%s", root, relative);
    return n >= 0 && (size_t)n < sizeof path ? fopen(path, "r") : NULL;
}

/* The cgroup2 mount and the cgroup (v1) mount holding the cpu controller,
 * from /proc/self/mountinfo. Returns how many were found. */
static int find_mounts(const char *root, cgroup_hierarchy *found)
{
    FILE *file = open_under(root, "/proc/self/mountinfo");
    if (!file)
        return 0;
    int have_v1 = 0, have_v2 = 0, count = 0;
    char line[CGROUP_LINE_MAX];
    while (count < CGROUP_MAX_HIERARCHIES && fgets(line, sizeof line, file)) {
        /* id parent major:minor root mount-point options [optional...] - type source super-options */
        char *fields[6] = {0};
        char *save = NULL, *tok = strtok_r(line, " \n", &save);
        int n = 0;
        for (; tok && n < 6; tok = strtok_r(NULL, " \n", &save))
            fields[n++] = tok;
        if (n < 6)
            continue;
        while (tok && strcmp(tok, "-") != 0)
            tok = strtok_r(NULL, " \n", &save);
        char *type = tok ? strtok_r(NULL, " \n", &save) : NULL;
        char *source = type ? strtok_r(NULL, " \n", &save) : NULL;
        char *super = source ? strtok_r(NULL, " \n", &save) : NULL;
        if (!type)
            continue;
        int v2 = strcmp(type, "cgroup2") == 0;
        int v1 = strcmp(type, "cgroup") == 0 && super && list_has(super, "cpu");
        if ((v2 && have_v2) || (v1 && have_v1) || !(v1 || v2))
            continue;
        cgroup_hierarchy *h = &found[count];
        if (strlen(fields[3]) >= sizeof h->mount_root || strlen(fields[4]) >= sizeof h->mount_point)
            continue;
        strcpy(h->mount_root, fields[3]);
        strcpy(h->mount_point, fields[4]);
        unescape_octal(h->mount_root);
        unescape_octal(h->mount_point);
        h->v2 = v2;
        have_v2 |= v2;
        have_v1 |= v1;
        ++count;
    }
    fclose(file);
    return count;
}

/* The process's cgroup in the hierarchy (/proc/self/cgroup: "0::/path" for
 * v2, "id:cpu,cpuacct:/path" for v1). 0 when it is not listed. */
static int own_cgroup(const char *root, int v2, char *out, size_t size)
{
    FILE *file = open_under(root, "/proc/self/cgroup");
    if (!file)
        return 0;
    int found = 0;
    char line[CGROUP_LINE_MAX];
    while (!found && fgets(line, sizeof line, file)) {
        line[strcspn(line, "\n")] = '\0';
        char *first = strchr(line, ':');
        char *second = first ? strchr(first + 1, ':') : NULL;
        if (!second)
            continue;
        *first = *second = '\0';
        int matches = v2 ? strcmp(line, "0") == 0 && first[1] == '\0' : list_has(first + 1, "cpu");
        if (matches && strlen(second + 1) < size) {
            strcpy(out, second + 1);
            found = 1;
        }
    }
    fclose(file);
    return found;
}

/* Reads up to two integers from the file dir + name ("max" reads as -1). */
static int read_numbers(const char *dir, const char *name, int64_t *a, int64_t *b)
{
    FILE *file = open_under(dir, name);
    if (!file)
        return 0;
    char text[128] = {0};
    size_t got = fread(text, 1, sizeof text - 1, file);
    fclose(file);
    text[got] = '\0';
    int count = 0;
    char *p = text;
    int64_t *outs[2] = {a, b};
    while (count < 2) {
        while (*p == ' ' || *p == '\t' || *p == '\n')
            ++p;
        if (!*p)
            break;
        if (strncmp(p, "max", 3) == 0) {
            *outs[count++] = -1;
            p += 3;
            continue;
        }
        char *end;
        errno = 0;
        long long value = strtoll(p, &end, 10);
        if (end == p || errno == ERANGE)
            break;
        *outs[count++] = (int64_t)value;
        p = end;
    }
    return count;
}

/* CPUs a quota of `quota` microseconds per `period` allows, rounded up; 0
 * when unlimited or unreadable. */
static int quota_cpus(int64_t quota, int64_t period)
{
    if (quota <= 0 || period <= 0)
        return 0;
    int64_t cpus = quota / period + (quota % period != 0);
    return (int)cnnc_min_i64(cnnc_max_i64(cpus, 1), 1 << 20);
}

static int quota_in_directory(const char *dir, int v2)
{
    int64_t quota = 0, period = 0;
    if (v2) {
        if (read_numbers(dir, "/cpu.max", &quota, &period) < 2)
            return 0;
    } else {
        int64_t unused;
        if (read_numbers(dir, "/cpu.cfs_quota_us", &quota, &unused) < 1 ||
            read_numbers(dir, "/cpu.cfs_period_us", &period, &unused) < 1)
            return 0;
    }
    return quota_cpus(quota, period);
}

/* The least quota over the cgroup and its ancestors within the mount (a
 * parent's quota binds its children too). */
static int hierarchy_quota(const char *root, const cgroup_hierarchy *h)
{
    char group[CGROUP_PATH_MAX];
    if (!own_cgroup(root, h->v2, group, sizeof group))
        return 0;
    /* The mount shows the cgroup mount_root at its mount point (a container
     * sees its own cgroup as the root of the mount); a cgroup outside it
     * (another cgroup namespace) is read at the mount point. */
    const char *relative = group;
    size_t root_len = strlen(h->mount_root);
    if (strcmp(h->mount_root, "/") != 0) {
        if (strncmp(group, h->mount_root, root_len) == 0 && (group[root_len] == '/' || group[root_len] == '\0'))
            relative = group + root_len;
        else
            relative = "";
    }
    char dir[CGROUP_PATH_MAX];
    int n = snprintf(dir, sizeof dir, "%s%s%s", root, h->mount_point, relative);
    if (n < 0 || (size_t)n >= sizeof dir)
        return 0;
    size_t top = strlen(root) + strlen(h->mount_point);
    size_t len = strlen(dir);
    while (len > top && dir[len - 1] == '/')
        dir[--len] = '\0';
    int least = 0;
    for (;;) {
        int cpus = quota_in_directory(dir, h->v2);
        if (cpus > 0 && (least == 0 || cpus < least))
            least = cpus;
        if (len <= top)
            break;
        char *slash = strrchr(dir, '/');
        if (!slash || (size_t)(slash - dir) < top)
            break;
        *slash = '\0';
        len = strlen(dir);
    }
    return least;
}

int cnnc_get_cpu_quota(const char *root)
{
#if defined(__linux__)
    if (!root || strcmp(root, "/") == 0)
        root = "";
    if (strlen(root) >= CGROUP_PATH_MAX / 2)
        return 0;
    cgroup_hierarchy found[CGROUP_MAX_HIERARCHIES];
    int count = find_mounts(root, found);
    int least = 0;
    for (int i = 0; i < count; ++i) {
        int cpus = hierarchy_quota(root, &found[i]);
        if (cpus > 0 && (least == 0 || cpus < least))
            least = cpus;
    }
    return least;
#else
    (void)root;
    return 0;
#endif
}
