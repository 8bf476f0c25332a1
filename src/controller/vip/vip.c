/* vip.c: the cluster IP follows the leader. See vip.h for the rules. */
#include "controller/vip/vip.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/if_ether.h>
#include <netpacket/packet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/vlog.h"

#define VIP__DEFAULT_CHECK_MS 25
#define VIP__ANNOUNCEMENTS 4      /* gratuitous ARP rounds after taking the address */
#define VIP__ANNOUNCE_GAP_MS 250  /* between two rounds */

struct vip__barrier;

struct vip {
    uv_loop_t *loop;
    struct cluster *cluster;
    uv_timer_t check_timer;
    uv_timer_t announce_timer;
    int handles_open;          /* timers not yet closed */
    char cidr[64];
    char dev[IF_NAMESIZE];
    uint32_t addr;             /* network byte order */
    unsigned prefix;
    unsigned hold_off_ms;      /* time to lead in a term before taking the address */
    unsigned quorum_grace_ms;  /* how long "no quorum" must last to count as lost */
    unsigned check_ms;
    bool inert;                /* cannot manage the address: never holds it */
    bool held;
    uint64_t held_term;
    uint64_t lead_term;        /* the term in which this node was last seen leading */
    uint64_t lead_since;       /* uv_now when first seen leading in lead_term */
    uint64_t committed_term;   /* a barrier succeeded in this term */
    uint64_t quorum_seen;      /* uv_now when the leader last had quorum (0 = not yet) */
    uint64_t last_check;       /* uv_now of the last timer run (stall detection) */
    struct vip__barrier *barrier; /* in flight, or NULL */
    unsigned announcements_left;
    struct mnl_socket *nl;
    unsigned nl_seq;
    int packet_fd;             /* AF_PACKET for gratuitous ARP, -1 when unavailable */
    bool packet_warned;
    bool take_error_logged;    /* a failed take was logged (once until a take succeeds) */
};

/* A barrier outlives the vip when vip_close runs first: it is then detached (v = NULL)
 * and frees itself when raft answers. */
struct vip__barrier {
    struct vip *v;
    uint64_t term;
};

static void vip__on_announce_timer(uv_timer_t *t);
static void vip__evaluate(struct vip *v);

/* --- parsing ------------------------------------------------------------------------- */

int vip_parse(const char *cidr, uint32_t *addr, unsigned *prefix, char *err, size_t errlen)
{
    char host[64];
    const char *slash = strchr(cidr, '/');
    char *end = NULL;
    long p;
    struct in_addr a;

    if (slash == NULL || slash == cidr || (size_t)(slash - cidr) >= sizeof host) {
        snprintf(err, errlen, "--vip %s: expected ADDR/PREFIX, e.g. 198.18.0.100/24", cidr);
        return VIGIL_EINVAL;
    }
    memcpy(host, cidr, (size_t)(slash - cidr));
    host[slash - cidr] = '\0';
    if (inet_pton(AF_INET, host, &a) != 1) {
        snprintf(err, errlen, "--vip %s: '%s' is not an IPv4 address (only IPv4 is supported)",
                 cidr, host);
        return VIGIL_EINVAL;
    }
    errno = 0;
    p = strtol(slash + 1, &end, 10);
    if (slash[1] == '\0' || *end != '\0' || errno != 0 || p < 1 || p > 32) {
        snprintf(err, errlen, "--vip %s: the prefix must be a number from 1 to 32", cidr);
        return VIGIL_EINVAL;
    }
    if (a.s_addr == htonl(INADDR_ANY) || a.s_addr == htonl(INADDR_BROADCAST) ||
        (ntohl(a.s_addr) >> 24) == 127 || IN_MULTICAST(ntohl(a.s_addr))) {
        snprintf(err, errlen, "--vip %s: not a usable unicast address", cidr);
        return VIGIL_EINVAL;
    }
    *addr = a.s_addr;
    *prefix = (unsigned)p;
    return 0;
}

/* --- netlink ------------------------------------------------------------------------- */

/* Sends RTM_NEWADDR or RTM_DELADDR for the address on IFINDEX and waits for the kernel's
 * acknowledgement. Returns 0 (also for "already there" / "already gone"), or a negative
 * errno (-EPERM without CAP_NET_ADMIN, -ENODEV, ...). */
static int vip__netlink_address(struct vip *v, int type, unsigned ifindex)
{
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *nlh;
    struct ifaddrmsg *ifa;
    unsigned seq = ++v->nl_seq;
    unsigned portid = mnl_socket_get_portid(v->nl);
    ssize_t n;
    int rv;

    nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = (uint16_t)type;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    if (type == RTM_NEWADDR)
        nlh->nlmsg_flags |= NLM_F_CREATE | NLM_F_REPLACE;
    nlh->nlmsg_seq = seq;
    ifa = mnl_nlmsg_put_extra_header(nlh, sizeof *ifa);
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = (unsigned char)v->prefix;
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    ifa->ifa_index = ifindex;
    mnl_attr_put_u32(nlh, IFA_LOCAL, v->addr);
    mnl_attr_put_u32(nlh, IFA_ADDRESS, v->addr);

    if (mnl_socket_sendto(v->nl, nlh, nlh->nlmsg_len) < 0)
        return -errno;
    for (;;) {
        n = mnl_socket_recvfrom(v->nl, buf, sizeof buf);
        if (n < 0)
            return errno == EAGAIN ? -ETIMEDOUT : -errno;
        rv = mnl_cb_run(buf, (size_t)n, seq, portid, NULL, NULL);
        if (rv == MNL_CB_STOP)
            return 0;
        if (rv == MNL_CB_ERROR) {
            /* A stale answer to an earlier request that timed out: keep reading. */
            if (errno == EPROTO || errno == ESRCH)
                continue;
            if (type == RTM_NEWADDR && errno == EEXIST)
                return 0;
            if (type == RTM_DELADDR && (errno == EADDRNOTAVAIL || errno == ENOENT))
                return 0;
            return -errno;
        }
        /* MNL_CB_OK: more messages to come (not expected for an ack). */
    }
}

/* --- the device ---------------------------------------------------------------------- */

/* The device's index (0 when it does not exist). */
static unsigned vip__ifindex(const struct vip *v)
{
    return if_nametoindex(v->dev);
}

/* Reads the device's Ethernet address into MAC. Returns 0, or a negative errno
 * (-EAFNOSUPPORT when the device is not Ethernet-like). */
static int vip__hardware_address(const struct vip *v, unsigned char mac[ETH_ALEN])
{
    struct ifreq ifr;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int rv = 0;

    if (fd < 0)
        return -errno;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", v->dev);
    if (ioctl(fd, SIOCGIFHWADDR, &ifr) != 0)
        rv = -errno;
    else if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER)
        rv = -EAFNOSUPPORT;
    else
        memcpy(mac, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
    close(fd);
    return rv;
}

/* --- gratuitous ARP ------------------------------------------------------------------ */

/* Sends one ARP request and one ARP reply announcing ADDR at the device's MAC, both to
 * the broadcast address (what `arping -U` and `arping -A` send). Returns 0 or a negative
 * errno. */
static int vip__announce_once(struct vip *v)
{
    unsigned char mac[ETH_ALEN];
    struct sockaddr_ll to;
    struct ether_arp arp;
    unsigned ifindex = vip__ifindex(v);
    int rv;

    if (v->packet_fd < 0)
        return -EBADF;
    if (ifindex == 0)
        return -ENODEV;
    rv = vip__hardware_address(v, mac);
    if (rv != 0)
        return rv;
    memset(&to, 0, sizeof to);
    to.sll_family = AF_PACKET;
    to.sll_protocol = htons(ETH_P_ARP);
    to.sll_ifindex = (int)ifindex;
    to.sll_halen = ETH_ALEN;
    memset(to.sll_addr, 0xff, ETH_ALEN);

    for (int op = 0; op < 2; op++) {
        memset(&arp, 0, sizeof arp);
        arp.arp_hrd = htons(ARPHRD_ETHER);
        arp.arp_pro = htons(ETH_P_IP);
        arp.arp_hln = ETH_ALEN;
        arp.arp_pln = 4;
        arp.arp_op = htons(op == 0 ? ARPOP_REQUEST : ARPOP_REPLY);
        memcpy(arp.arp_sha, mac, ETH_ALEN);
        memcpy(arp.arp_spa, &v->addr, 4);
        if (op == 1)
            memcpy(arp.arp_tha, mac, ETH_ALEN); /* a gratuitous reply names itself */
        memcpy(arp.arp_tpa, &v->addr, 4);
        if (sendto(v->packet_fd, &arp, sizeof arp, 0, (struct sockaddr *)&to, sizeof to) < 0)
            return -errno;
    }
    return 0;
}

/* Sends one round of announcements and re-arms the timer while rounds are left. */
static void vip__announce(struct vip *v)
{
    int rv;

    if (!v->held || v->announcements_left == 0)
        return;
    v->announcements_left--;
    rv = vip__announce_once(v);
    if (rv != 0 && !v->packet_warned) {
        v->packet_warned = true;
        vlog_warn("vip: cannot send gratuitous ARP for %s on %s: %s (neighbours learn the "
                  "new holder only when their ARP entries expire)",
                  v->cidr, v->dev, strerror(-rv));
    }
    if (v->announcements_left > 0)
        uv_timer_start(&v->announce_timer, vip__on_announce_timer, VIP__ANNOUNCE_GAP_MS, 0);
}

static void vip__on_announce_timer(uv_timer_t *t)
{
    vip__announce(t->data);
}

/* --- taking and dropping --------------------------------------------------------------- */

/* Removes the address from the device (held or not). Returns 0 or a negative errno. */
static int vip__remove(struct vip *v)
{
    unsigned ifindex = vip__ifindex(v);
    if (ifindex == 0)
        return -ENODEV;
    return vip__netlink_address(v, RTM_DELADDR, ifindex);
}

/* Drops the address if held; WHY is logged. */
static void vip__drop(struct vip *v, const char *why)
{
    int rv;

    uv_timer_stop(&v->announce_timer);
    v->announcements_left = 0;
    if (!v->held)
        return;
    v->held = false;
    rv = vip__remove(v);
    if (rv != 0 && rv != -ENODEV)
        vlog_error("vip: cannot remove %s from %s: %s", v->cidr, v->dev, strerror(-rv));
    else
        vlog_info("vip: released %s on %s (%s, term %llu)", v->cidr, v->dev, why,
                  (unsigned long long)v->held_term);
}

/* Adds the address and starts announcing it. */
static void vip__take(struct vip *v, uint64_t term)
{
    unsigned ifindex = vip__ifindex(v);
    int rv = ifindex == 0 ? -ENODEV : vip__netlink_address(v, RTM_NEWADDR, ifindex);

    if (rv != 0) {
        if (!v->take_error_logged)
            vlog_error("vip: cannot add %s to %s: %s%s", v->cidr, v->dev, strerror(-rv),
                       rv == -EPERM ? " (vigild needs CAP_NET_ADMIN)" : "");
        v->take_error_logged = true;
        return;
    }
    v->take_error_logged = false;
    v->held = true;
    v->held_term = term;
    vlog_info("vip: took %s on %s (leader of term %llu)", v->cidr, v->dev,
              (unsigned long long)term);
    v->announcements_left = VIP__ANNOUNCEMENTS;
    vip__announce(v);
}

/* --- deciding --------------------------------------------------------------------------- */

/* Raft confirmed (or not) that an entry of B->term committed while this node led. */
static void vip__on_barrier(void *data, int status)
{
    struct vip__barrier *b = data;
    struct vip *v = b->v;
    uint64_t term = b->term;

    free(b);
    if (v == NULL)
        return; /* vip_close ran meanwhile */
    v->barrier = NULL;
    if (status == 0 && cluster_is_leader(v->cluster) && cluster_term(v->cluster) == term)
        v->committed_term = term;
    vip__evaluate(v);
}

/* Asks raft to commit an entry of TERM (once at a time). */
static void vip__start_barrier(struct vip *v, uint64_t term)
{
    struct vip__barrier *b;

    if (v->barrier != NULL)
        return;
    b = calloc(1, sizeof *b);
    if (b == NULL)
        return; /* retried on the next check */
    b->v = v;
    b->term = term;
    if (cluster_barrier(v->cluster, vip__on_barrier, b) != 0) {
        free(b);
        return;
    }
    v->barrier = b;
}

/* The one place that decides whether this node holds the address. */
static void vip__evaluate(struct vip *v)
{
    uint64_t now = uv_now(v->loop);
    uint64_t term;

    if (v->inert)
        return;
    if (!cluster_is_leader(v->cluster)) {
        vip__drop(v, "not the leader");
        v->lead_term = 0;
        return;
    }
    term = cluster_term(v->cluster);
    if (term != v->lead_term) {
        vip__drop(v, "new term");
        v->lead_term = term;
        v->lead_since = now;
        v->quorum_seen = 0;
    }
    if (v->held && v->held_term != term) {
        vip__drop(v, "term changed");
        return;
    }
    if (cluster_leader_has_quorum(v->cluster))
        v->quorum_seen = now;
    if (v->held) {
        if (now - v->quorum_seen > v->quorum_grace_ms)
            vip__drop(v, "the leader lost its majority");
        return;
    }
    if (v->quorum_seen != now)
        return; /* take it only on a fresh reading of quorum */
    if (v->committed_term != term) {
        vip__start_barrier(v, term);
        return;
    }
    if (now - v->lead_since < v->hold_off_ms)
        return;
    vip__take(v, term);
}

static void vip__on_check_timer(uv_timer_t *t)
{
    struct vip *v = t->data;
    uint64_t now = uv_now(v->loop);

    /* A loop that did not run for a long time (a paused process, an overloaded host) may
     * have missed its deposition: drop the address and prove leadership again with a
     * fresh barrier (the hold-off already ran in this term: an old leader of an earlier
     * term is no concern any more, and a barrier committed in this term shows that no
     * later term has a leader yet). */
    if (v->last_check != 0 && now - v->last_check > v->quorum_grace_ms + v->check_ms) {
        if (v->held)
            vlog_warn("vip: the loop stalled for %llu ms", (unsigned long long)(now - v->last_check));
        vip__drop(v, "loop stalled");
        v->committed_term = 0;
        v->quorum_seen = 0;
    }
    v->last_check = now;
    vip__evaluate(v);
}

/* --- public ------------------------------------------------------------------------------ */

int vip_open(uv_loop_t *loop, struct cluster *cluster, const struct vip_config *cfg,
             struct vip **out, char *err, size_t errlen)
{
    struct vip *v;
    unsigned ifindex;
    int rv;

    if (cfg->dev == NULL || cfg->dev[0] == '\0' || strlen(cfg->dev) >= IF_NAMESIZE ||
        strchr(cfg->dev, '/') != NULL) {
        snprintf(err, errlen, "--vip-dev '%s': not a valid interface name",
                 cfg->dev != NULL ? cfg->dev : "");
        return VIGIL_EINVAL;
    }
    v = calloc(1, sizeof *v);
    if (v == NULL) {
        snprintf(err, errlen, "out of memory");
        return VIGIL_ENOMEM;
    }
    rv = vip_parse(cfg->cidr, &v->addr, &v->prefix, err, errlen);
    if (rv != 0) {
        free(v);
        return rv;
    }
    v->loop = loop;
    v->cluster = cluster;
    snprintf(v->cidr, sizeof v->cidr, "%s", cfg->cidr);
    snprintf(v->dev, sizeof v->dev, "%s", cfg->dev);
    v->quorum_grace_ms = 2 * cfg->heartbeat_ms;
    v->hold_off_ms = cfg->election_timeout_ms + v->quorum_grace_ms;
    v->check_ms = VIP__DEFAULT_CHECK_MS;
    v->packet_fd = -1;

    v->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
    if (v->nl == NULL || mnl_socket_bind(v->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
        vlog_error("vip: cannot open a netlink socket: %s; this node will not hold %s",
                   strerror(errno), v->cidr);
        v->inert = true;
    } else {
        struct timeval tv = {.tv_sec = 1};
        setsockopt(mnl_socket_get_fd(v->nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }

    if (!v->inert) {
        ifindex = vip__ifindex(v);
        if (ifindex == 0) {
            vlog_error("vip: --vip-dev %s: no such network device; this node will not hold %s",
                       v->dev, v->cidr);
            v->inert = true;
        } else {
            /* A crash may have left the address here. */
            rv = vip__netlink_address(v, RTM_DELADDR, ifindex);
            if (rv == -EPERM) {
                vlog_error("vip: no permission to manage addresses on %s (vigild needs "
                           "CAP_NET_ADMIN); this node will not hold %s", v->dev, v->cidr);
                v->inert = true;
            } else if (rv != 0) {
                vlog_error("vip: cannot manage %s on %s: %s; this node will not hold it",
                           v->cidr, v->dev, strerror(-rv));
                v->inert = true;
            }
        }
    }
    if (!v->inert) {
        v->packet_fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                              htons(ETH_P_ARP));
        if (v->packet_fd < 0) {
            v->packet_warned = true;
            vlog_warn("vip: no raw socket for gratuitous ARP (%s; needs CAP_NET_RAW): "
                      "neighbours learn a new holder only when their ARP entries expire",
                      strerror(errno));
        }
        vlog_info("vip: managing %s on %s (taken %u ms after winning an election)", v->cidr,
                  v->dev, v->hold_off_ms);
    }

    uv_timer_init(loop, &v->check_timer);
    v->check_timer.data = v;
    uv_timer_init(loop, &v->announce_timer);
    v->announce_timer.data = v;
    v->handles_open = 2;
    if (!v->inert)
        uv_timer_start(&v->check_timer, vip__on_check_timer, v->check_ms, v->check_ms);
    *out = v;
    return 0;
}

void vip_update(struct vip *v)
{
    vip__evaluate(v);
}

static void vip__on_closed(uv_handle_t *h)
{
    struct vip *v = h->data;
    if (--v->handles_open == 0)
        free(v);
}

void vip_close(struct vip *v)
{
    vip__drop(v, "stopping");
    uv_timer_stop(&v->check_timer);
    if (v->barrier != NULL)
        v->barrier->v = NULL;
    v->barrier = NULL;
    if (v->nl != NULL)
        mnl_socket_close(v->nl);
    v->nl = NULL;
    if (v->packet_fd >= 0)
        close(v->packet_fd);
    v->packet_fd = -1;
    v->inert = true;
    uv_close((uv_handle_t *)&v->check_timer, vip__on_closed);
    uv_close((uv_handle_t *)&v->announce_timer, vip__on_closed);
}

bool vip_held(const struct vip *v)
{
    return v != NULL && v->held;
}
