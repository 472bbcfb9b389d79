/**
 * Pure cases for the snapshot's ownership rules: dockerd's own objects are set
 * apart, docker-cni's objects that name dockerd's bridge are not.
 */
import assert from 'node:assert/strict';
import { diffSnapshots, type HostSnapshot } from '../../helpers/host-snapshot.js';

const DOCKERD = { bridges: ['docker0', 'br-0123456789ab'], subnets: ['172.17.0.0/16', '172.18.0.0/16'] };

function snapshot(parts: Partial<HostSnapshot> = {}): HostSnapshot {
  return {
    links: ['docker0', 'eth0', 'lo'],
    netns: [],
    iptables: [],
    ip6tables: [],
    routes: [],
    ipRules: [],
    tc: [],
    sysctls: [],
    conntrack: [],
    files: [],
    dockerd: DOCKERD,
    ...parts,
  };
}

export const ownershipCases: Array<{ name: string; run: () => void }> = [
  {
    name: "dockerd's chains, jumps, bridge rules and masquerade of its subnets are set apart",
    run: () => {
      const after = snapshot({
        iptables: [
          'filter: :DOCKER-ISOLATION-STAGE-1 - ',
          'filter: -A DOCKER-ISOLATION-STAGE-1 -i br-0123456789ab ! -o br-0123456789ab -j DOCKER-ISOLATION-STAGE-2',
          'filter: -A FORWARD -o br-0123456789ab -j DOCKER',
          'filter: -A FORWARD -i docker0 ! -o docker0 -j ACCEPT',
          'nat: -A POSTROUTING -s 172.18.0.0/16 ! -o br-0123456789ab -j MASQUERADE',
          'nat: -A POSTROUTING -s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE',
          'raw: -A PREROUTING -d 172.17.0.2/32 ! -i docker0 -j DROP',
          'filter: -A DOCKER-USER -j RETURN',
        ],
      });
      assert.deepEqual(diffSnapshots(snapshot(), after), []);
      assert.deepEqual(diffSnapshots(after, snapshot()), []);
    },
  },
  {
    name: "docker-cni's rules naming docker0 count, in both directions",
    run: () => {
      const ours = [
        'filter: -A DOCKER-CNI-EGRESS -i dcni-0123456789 -o docker0 -m comment --comment dcni:0123456789ab -j DROP',
        'filter: -A DOCKER-CNI-EGRESS -i dcni-0123456789 -o br-+ -m comment --comment dcni:0123456789ab -j DROP',
      ];
      const withOurs = snapshot({ iptables: ours });
      assert.deepEqual(diffSnapshots(snapshot(), withOurs), ours.map((rule) => `+ iptables: ${rule}`));
      assert.deepEqual(diffSnapshots(withOurs, snapshot()), ours.map((rule) => `- iptables: ${rule}`));
    },
  },
  {
    name: "docker-cni's jump in DOCKER-USER is plumbing when it appears and counts when it disappears",
    run: () => {
      const jump = snapshot({ iptables: ['filter: :DOCKER-CNI-ISOLATION - ', 'filter: -A DOCKER-USER -j DOCKER-CNI-ISOLATION'] });
      assert.deepEqual(diffSnapshots(snapshot(), jump), []);
      assert.deepEqual(diffSnapshots(jump, snapshot()), [
        '- iptables: filter: :DOCKER-CNI-ISOLATION - ',
        '- iptables: filter: -A DOCKER-USER -j DOCKER-CNI-ISOLATION',
      ]);
    },
  },
  {
    name: "links of dockerd's bridges, their routes, qdiscs and sysctls, and the kernel's ifb0/ifb1 are set apart; ours are not",
    run: () => {
      const after = snapshot({
        links: ['docker0', 'eth0', 'ifb0', 'ifb1', 'lo', 'veth1234567 master docker0', 'dcni-0123456789', 'dc0123456789abc master dcni-0123456789'],
        routes: ['v6: fe80::/64 dev veth1234567 proto kernel metric 256 pref medium', 'v4: 10.231.7.0/24 dev dcni-0123456789 proto kernel scope link src 10.231.7.1'],
        tc: ['qdisc: qdisc noqueue 0: dev veth1234567 root', 'qdisc: qdisc noqueue 0: dev ifb0 root'],
      });
      assert.deepEqual(diffSnapshots(snapshot(), after), [
        '+ links: dcni-0123456789',
        '+ links: dc0123456789abc master dcni-0123456789',
        '+ routes: v4: 10.231.7.0/24 dev dcni-0123456789 proto kernel scope link src 10.231.7.1',
      ]);
    },
  },
  {
    name: 'docker_gwbridge is not dockerd\'s own: it exists only when a driver gave no gateway',
    run: () => {
      const after = snapshot({ links: ['docker0', 'docker_gwbridge', 'eth0', 'lo'] });
      assert.deepEqual(diffSnapshots(snapshot(), after), ['+ links: docker_gwbridge']);
    },
  },
  {
    name: 'a changed sysctl shows both values; the settings of a link that came or went do not repeat it',
    run: () => {
      const before = snapshot({ sysctls: ['ipv4/conf/eth0/proxy_arp=0'] });
      const after = snapshot({
        links: ['docker0', 'eth0', 'lo', 'dcni-0123456789'],
        sysctls: ['ipv4/conf/dcni-0123456789/forwarding=1', 'ipv4/conf/eth0/proxy_arp=1'],
      });
      assert.deepEqual(diffSnapshots(before, after), ['+ links: dcni-0123456789', '+ sysctls: ipv4/conf/eth0/proxy_arp=1', '- sysctls: ipv4/conf/eth0/proxy_arp=0']);
    },
  },
  {
    name: 'forwarding switched on host-wide (and the anycast routes that follow) is allowed; switched off, it counts',
    run: () => {
      const off = snapshot({ sysctls: ['ipv4/ip_forward=1', 'ipv6/conf/all/forwarding=0', 'ipv6/conf/eth0/forwarding=0'] });
      const on = snapshot({
        sysctls: ['ipv4/ip_forward=1', 'ipv6/conf/all/forwarding=1', 'ipv6/conf/eth0/forwarding=1'],
        routes: ['v6: anycast fe80:: dev eth0 table local proto kernel metric 0 pref medium'],
      });
      assert.deepEqual(diffSnapshots(off, on), []);
      assert.deepEqual(diffSnapshots(on, off), [
        '- routes: v6: anycast fe80:: dev eth0 table local proto kernel metric 0 pref medium',
        '+ sysctls: ipv6/conf/all/forwarding=0',
        '+ sysctls: ipv6/conf/eth0/forwarding=0',
        '- sysctls: ipv6/conf/all/forwarding=1',
        '- sysctls: ipv6/conf/eth0/forwarding=1',
      ]);
    },
  },
  {
    name: 'staging namespaces count once the plugin process that owns them is gone',
    run: () => {
      const live = `dcni-stage-${process.pid}-1`;
      const orphan = 'dcni-stage-999999999-1';
      assert.deepEqual(diffSnapshots(snapshot(), snapshot({ netns: [live, orphan] })), [`+ netns: ${orphan}`]);
      // Removing them is the plugin's job, whoever's they were.
      assert.deepEqual(diffSnapshots(snapshot({ netns: [live, orphan] }), snapshot()), []);
    },
  },
  {
    name: 'UDP conntrack entries count only when new and naming an address of a removed subnet',
    run: () => {
      const entry = 'udp ipv4 src=127.0.0.1 dst=127.0.0.1 sport=5000 dport=8053 to 10.231.7.9:53';
      const other = 'udp ipv4 src=127.0.0.1 dst=127.0.0.1 sport=5001 dport=8054 to 172.17.0.5:53';
      const after = snapshot({ conntrack: [entry, other] });
      assert.deepEqual(diffSnapshots(snapshot(), after, { subnets: ['10.231.7.0/24'] }), [`+ conntrack: ${entry}`]);
      assert.deepEqual(diffSnapshots(snapshot(), after), []);
      assert.deepEqual(diffSnapshots(after, snapshot(), { subnets: ['10.231.7.0/24'] }), []);
    },
  },
];
