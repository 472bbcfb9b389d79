/**
 * host-local's on-disk state, read and written the way host-local does, plus
 * removal of a whole network directory. The layout (host-local 1.1.1,
 * verified by a real ADD):
 *   <dataDir>/<network name>/<ip>                 "<containerId>\r\n<ifName>"
 *   <dataDir>/<network name>/last_reserved_ip.<N>
 *   <dataDir>/<network name>/lock                 (flock'd by every call)
 * File names of addresses are Go's net.IP.String(), which formatIp reproduces.
 */
import { lstatSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { lstat, readdir, rmdir, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { PluginError } from '../errors.js';
import { createInDirSync } from '../util/dir.js';
import { formatIp, parseIp, type IpAddr } from '../util/ip-math.js';
import { isPoolId } from '../names.js';

export interface HostLocalReservation {
  containerId: string;
  ifName: string;
}

/** What host-local writes into an allocation file is only trusted if it looks like this. */
const CONTAINER_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,255}$/;
const IFNAME_PATTERN = /^[A-Za-z0-9_.-]{1,15}$/;
const MAX_RESERVATION_FILE_BYTES = 1024;

/** The directory host-local uses for a pool; refuses anything that could escape dataDir. */
export function poolDirOf(dataDir: string, poolId: string): string {
  if (!isPoolId(poolId)) throw new PluginError('INVALID_ARGUMENT', `invalid PoolID "${poolId}"`);
  const base = resolve(dataDir);
  const dir = join(base, poolId);
  if (dirname(dir) !== base) throw new PluginError('INVALID_ARGUMENT', `PoolID "${poolId}" escapes the host-local data dir`);
  return dir;
}

/** Parses an allocation file's content; undefined if it is not what host-local writes. */
export function parseReservation(content: string): HostLocalReservation | undefined {
  const [containerId = '', ifName = 'eth0'] = content.split(/\r?\n/).map((s) => s.trim());
  if (!CONTAINER_ID_PATTERN.test(containerId) || !IFNAME_PATTERN.test(ifName)) return undefined;
  return { containerId, ifName };
}

/** host-local's name for the range set's round-robin position; docker-cni pools have one range set. */
const LAST_RESERVED_FILE = 'last_reserved_ip.0';
/** host-local separates the holder's container ID and ifname with CRLF. */
const LINE_BREAK = '\r\n';

function isHostLocalBookkeeping(name: string): boolean {
  return name === 'lock' || /^last_reserved_ip\.[0-9]{1,4}$/.test(name);
}

/** A file name host-local would use for an address (canonical form only). */
function addressOfFileName(name: string): IpAddr | undefined {
  const addr = parseIp(name);
  return addr && formatIp(addr) === name ? addr : undefined;
}

export class HostLocalStore {
  constructor(readonly dataDir: string) {}

  poolDir(poolId: string): string {
    return poolDirOf(this.dataDir, poolId);
  }

  /** The file host-local keeps for one address of a pool. */
  private addressFile(poolId: string, addr: IpAddr): string {
    return join(this.poolDir(poolId), formatIp(addr));
  }

  /**
   * The reservation holding `addr`, or undefined if the address is free.
   * Synchronous, like reserve below: ReleaseAddress reads and removes one tiny file on Docker's removal path,
   * and the async calls (lstat, then readFile's open, fstat, read and close, then unlink) each waited for the
   * event loop, which the background teardown's spawns were holding (bench/RESULTS.md).
   */
  reservationOf(poolId: string, addr: IpAddr): HostLocalReservation | undefined {
    const path = this.addressFile(poolId, addr);
    try {
      const info = lstatSync(path);
      if (!info.isFile() || info.size > MAX_RESERVATION_FILE_BYTES) {
        throw new PluginError('STATE_FAILED', `host-local allocation ${path} is not a small regular file`);
      }
      const reservation = parseReservation(readFileSync(path, 'utf8'));
      if (!reservation) throw new PluginError('STATE_FAILED', `host-local allocation ${path} has unexpected content`);
      return reservation;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') {
        return undefined;
      }
      if (err instanceof PluginError) throw err;
      throw new PluginError('STATE_FAILED', `reading host-local allocation ${path}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Whether host-local has a file for `addr`, whatever its content. */
  async isAllocated(poolId: string, addr: IpAddr): Promise<boolean> {
    const path = this.addressFile(poolId, addr);
    try {
      await lstat(path);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return false;
      throw new PluginError('STATE_FAILED', `checking host-local allocation ${path}: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Frees `addr` exactly as host-local's DEL does (it keeps no other per-address
   * state): one read of the holder, then the file goes. Returns the holder
   * removed, or undefined if the address was free.
   * Unlinking one file needs no flock: host-local's ADD reserves with O_EXCL
   * creates, so an address freed mid-scan is merely found free or taken.
   */
  removeReservation(poolId: string, addr: IpAddr): HostLocalReservation | undefined {
    const current = this.reservationOf(poolId, addr);
    if (!current) return undefined;
    const path = this.addressFile(poolId, addr);
    try {
      unlinkSync(path);
      return current;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new PluginError('STATE_FAILED', `removing host-local allocation ${path}: ${(err as Error).message}`, { cause: err });
    }
  }

  /*
   * Reserving runs on Docker's serialised RequestAddress path and touches three tiny local files, so it uses
   * synchronous calls (tens of microseconds each): in a burst of container starts, the async versions' ten
   * requests queued behind the busy libuv threadpool and made each RequestAddress milliseconds long
   * (bench/RESULTS.md).
   */

  /** Names in the pool's directory (addresses and bookkeeping); none before its first reservation. */
  names(poolId: string): Set<string> {
    try {
      return new Set(readdirSync(this.poolDir(poolId)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Set();
      throw new PluginError('STATE_FAILED', `listing host-local dir ${this.poolDir(poolId)}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Where host-local's round robin stands: the address it, or docker-cni, reserved last. */
  lastReserved(poolId: string): IpAddr | undefined {
    try {
      return parseIp(readFileSync(join(this.poolDir(poolId), LAST_RESERVED_FILE), 'utf8').trim());
    } catch {
      return undefined;
    }
  }

  /**
   * Reserves `addr` as host-local's ADD does: an O_EXCL create of the address's
   * file with the holder in it, then the round-robin position. Returns false
   * if the address is taken. The exclusive create, not host-local's flock,
   * is what keeps two reservations of one address apart, whoever makes them;
   * the flock orders host-local's read and write of `last_reserved_ip.0`, a
   * hint that a racing writer can only move.
   */
  reserve(poolId: string, addr: IpAddr, holder: HostLocalReservation): boolean {
    const dir = this.poolDir(poolId);
    const path = this.addressFile(poolId, addr);
    const create = (): void => writeFileSync(path, `${holder.containerId}${LINE_BREAK}${holder.ifName}`, { flag: 'wx', mode: 0o600 });
    try {
      // The pool's first address makes the directory, with the mode host-local gives it when it opens its store.
      createInDirSync(dir, 0o755, create);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw new PluginError('STATE_FAILED', `reserving ${path}: ${(err as Error).message}`, { cause: err });
    }
    try {
      writeFileSync(join(dir, LAST_RESERVED_FILE), formatIp(addr), { mode: 0o600 });
    } catch (err) {
      void unlink(path).catch(() => undefined);
      throw new PluginError('STATE_FAILED', `recording the last reserved address in ${dir}: ${(err as Error).message}`, { cause: err });
    }
    return true;
  }

  /** Every address host-local has handed out in a pool (canonical IP string -> holder). */
  async reservations(poolId: string): Promise<Map<string, HostLocalReservation>> {
    const dir = this.poolDir(poolId);
    const out = new Map<string, HostLocalReservation>();
    for (const name of (await this.entries(dir)).sort()) {
      const addr = addressOfFileName(name);
      if (!addr) continue;
      let reservation: HostLocalReservation | undefined;
      try {
        reservation = this.reservationOf(poolId, addr);
      } catch {
        // Skipped: a file host-local would not have written holds no reservation.
      }
      if (reservation) out.set(name, reservation);
      // Each read is synchronous; a scan of a large pool (the reconciler's) must not hold the plugin's calls up.
      await yieldToEventLoop();
    }
    return out;
  }

  /**
   * Removes the pool's host-local directory: only regular files host-local
   * creates (addresses, last_reserved_ip.N, lock), never following symlinks.
   * Returns the names left behind (foreign files), if any; the directory then stays.
   */
  async removePoolDir(poolId: string): Promise<string[]> {
    const dir = this.poolDir(poolId);
    let dirInfo;
    try {
      dirInfo = await lstat(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    if (!dirInfo.isDirectory()) return [dir];
    const leftovers: string[] = [];
    for (const name of await this.entries(dir)) {
      const path = join(dir, name);
      const info = await lstat(path).catch(() => undefined);
      if (!info) continue;
      if (info.isFile() && (isHostLocalBookkeeping(name) || addressOfFileName(name))) {
        await unlink(path).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err;
        });
      } else {
        leftovers.push(name);
      }
    }
    if (leftovers.length > 0) return leftovers;
    await rmdir(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    return [];
  }

  private async entries(dir: string): Promise<string[]> {
    try {
      return await readdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new PluginError('STATE_FAILED', `listing host-local dir ${dir}: ${(err as Error).message}`, { cause: err });
    }
  }
}
