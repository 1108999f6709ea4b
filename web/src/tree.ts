// A conversation as the server stores it: messages with parents. Regenerate and edit add
// siblings; the page shows one branch (root to leaf) and lets people move between siblings.
// Pure functions, no DOM: tested in test/ui-tree.test.ts.

export interface TreeMessage {
  id: string;
  parentId: string | null;
}

export interface MessageTree<M extends TreeMessage> {
  byId: Map<string, M>;
  /** children in the order they were written; the key '' holds the first messages */
  children: Map<string, M[]>;
}

export function buildTree<M extends TreeMessage>(messages: readonly M[]): MessageTree<M> {
  const byId = new Map<string, M>();
  const children = new Map<string, M[]>();
  for (const m of messages) {
    byId.set(m.id, m);
    const key = m.parentId ?? '';
    const list = children.get(key);
    if (list) list.push(m);
    else children.set(key, [m]);
  }
  return { byId, children };
}

/** The branch from the first message down to `leafId`, oldest first (empty if the leaf is unknown). */
export function branchTo<M extends TreeMessage>(tree: MessageTree<M>, leafId: string | null): M[] {
  const out: M[] = [];
  let at = leafId ? tree.byId.get(leafId) : undefined;
  // Bounded: a (corrupt) cycle cannot loop forever.
  for (let steps = 0; at && steps <= tree.byId.size; steps++) {
    out.push(at);
    at = at.parentId ? tree.byId.get(at.parentId) : undefined;
  }
  return out.reverse();
}

/** The newest message down from `id`, always taking the newest child: where a branch's latest turn is. */
export function newestLeaf<M extends TreeMessage>(tree: MessageTree<M>, id: string): string {
  let at = id;
  for (let steps = 0; steps <= tree.byId.size; steps++) {
    const kids = tree.children.get(at);
    const last = kids?.[kids.length - 1];
    if (!last) break;
    at = last.id;
  }
  return at;
}

/** A message's siblings (itself included) and its place among them. */
export function siblingsOf<M extends TreeMessage>(tree: MessageTree<M>, message: M): { siblings: M[]; index: number } {
  const siblings = tree.children.get(message.parentId ?? '') ?? [message];
  return {
    siblings,
    index: Math.max(
      0,
      siblings.findIndex((s) => s.id === message.id),
    ),
  };
}

/** The leaf to show after moving `by` places (-1: previous, +1: next) among `message`'s siblings. */
export function moveAmongSiblings<M extends TreeMessage>(tree: MessageTree<M>, message: M, by: number): string | null {
  const { siblings, index } = siblingsOf(tree, message);
  const next = siblings[index + by];
  return next ? newestLeaf(tree, next.id) : null;
}

/** The leaf to show when a conversation opens: the stored one, else the newest message. */
export function initialLeaf<M extends TreeMessage>(
  tree: MessageTree<M>,
  stored: string | null,
  messages: readonly M[],
): string | null {
  if (stored && tree.byId.has(stored)) return stored;
  return messages.length ? (messages[messages.length - 1]?.id ?? null) : null;
}
