/** Kernel modules and the iptables backend, compared with dockerd's. */
import { existsSync, readFileSync } from 'node:fs';
import { execa } from 'execa';
import { fail, ok, warn, type Finding } from './finding.js';

/** Modules the data path needs, with a file that exists only while the feature is there. */
const MODULES: ReadonlyArray<readonly [name: string, why: string, proof: string | undefined]> = [
  ['bridge', 'bridges of generated networks', '/sys/module/bridge'],
  ['br_netfilter', 'iptables sees bridged traffic (isolation, ICC)', '/proc/sys/net/bridge/bridge-nf-call-iptables'],
  ['veth', 'container links', '/sys/module/veth'],
  ['nf_nat', 'masquerading and published ports', '/sys/module/nf_nat'],
  ['nf_conntrack', 'stateful rules', '/proc/sys/net/netfilter/nf_conntrack_max'],
];

export function kernelModuleFindings(): Finding[] {
  let procModules: string | undefined;
  try {
    procModules = readFileSync('/proc/modules', 'utf8');
  } catch {
    // A kernel without loadable modules has everything it supports built in.
  }
  return MODULES.map(([name, why, proof]) => {
    if ((proof && existsSync(proof)) || procModules?.split('\n').some((line) => line.startsWith(`${name} `))) return ok('kernel', name, `present (${why})`);
    if (procModules === undefined) return ok('kernel', name, `kernel without loadable modules: built in if supported (${why})`);
    return warn('kernel', name, `not loaded (${why})`, `modprobe ${name} (and list it in /etc/modules-load.d/docker-cni.conf)`);
  });
}

async function output(file: string, args: string[]): Promise<string | undefined> {
  const r = await execa(file, args, { reject: false, timeout: 15_000 });
  return r.exitCode === 0 ? String(r.stdout) : undefined;
}

/** Chains dockerd creates at start, counted per backend. */
async function dockerChains(saveTool: string): Promise<number> {
  const dump = await output(saveTool, []);
  return dump ? dump.split('\n').filter((line) => line.startsWith(':DOCKER')).length : 0;
}

export async function iptablesFindings(): Promise<Finding[]> {
  const version = await output('iptables', ['-V']);
  if (!version) return [fail('iptables', 'iptables', 'iptables is not installed or does not run', 'apt-get install iptables')];
  const ours = /\((nf_tables|legacy)\)/.exec(version)?.[1] === 'legacy' ? 'legacy' : 'nft';
  const [legacy, nft] = await Promise.all([dockerChains('iptables-legacy-save'), dockerChains('iptables-nft-save')]);
  const findings = [ok('iptables', 'backend', `${version.trim()}: docker-cni writes ${ours} rules`)];
  if (legacy === 0 && nft === 0) {
    findings.push(warn('iptables', "dockerd's backend", 'no DOCKER chains in either backend', 'start dockerd with iptables enabled (the default), then run doctor again'));
  } else {
    const dockerd = legacy > nft ? 'legacy' : 'nft';
    findings.push(
      dockerd === ours
        ? ok('iptables', "dockerd's backend", `${dockerd}, the same`)
        : fail('iptables', "dockerd's backend", `dockerd's rules are in ${dockerd}, docker-cni's would go to ${ours}: traffic would be dropped`, `update-alternatives --set iptables /usr/sbin/iptables-${dockerd} (and ip6tables); for the managed plugin: docker plugin set <plugin> IPTABLES_BACKEND=${dockerd}`),
    );
  }
  return findings;
}
