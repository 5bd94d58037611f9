// Participants as the extension knows them from `dist-space/presence` (no `vscode` dependency).

import { Pos } from './text';

export interface Cursor {
  anchor: Pos;
  head: Pos;
}

export interface Peer {
  id: number;
  name: string;
  uri: string | null;
  cursors: Cursor[];
  color: string;
}

/** Distinct colours, handed out in order of arrival (then reused). */
export const PALETTE = ['#e5534b', '#2f81f7', '#3fb950', '#d29922', '#a371f7', '#db61a2', '#39c5cf', '#f0883e'];

export class PeerTable {
  private peers = new Map<number, Peer>();
  private used = new Map<number, number>(); // id -> palette index
  private next = 0;

  /** Apply a presence notice; returns the peer (uri null: left / no document). */
  update(n: { id: number; name: string; uri?: string | null; cursors?: Cursor[] }): Peer {
    let idx = this.used.get(n.id);
    if (idx === undefined) {
      // the first palette entry nobody present uses, else round robin
      const taken = new Set([...this.peers.values()].map((p) => this.used.get(p.id)));
      idx = PALETTE.findIndex((_, i) => !taken.has(i));
      if (idx < 0) idx = this.next++ % PALETTE.length;
      this.used.set(n.id, idx);
    }
    const p: Peer = { id: n.id, name: n.name, uri: n.uri ?? null, cursors: n.cursors ?? [], color: PALETTE[idx] };
    if (p.uri === null) {
      this.peers.delete(n.id);
      this.used.delete(n.id);
    } else {
      this.peers.set(n.id, p);
    }
    return p;
  }

  clear(): void {
    this.peers.clear();
    this.used.clear();
  }

  all(): Peer[] {
    return [...this.peers.values()].sort((a, b) => a.name.localeCompare(b.name) || a.id - b.id);
  }

  get(id: number): Peer | undefined {
    return this.peers.get(id);
  }

  /** Exact name, else name prefix. */
  find(name: string): Peer | undefined {
    const all = this.all();
    return all.find((p) => p.name === name) ?? all.find((p) => p.name.startsWith(name));
  }

  inDocument(uri: string): Peer[] {
    return this.all().filter((p) => p.uri === uri);
  }
}
