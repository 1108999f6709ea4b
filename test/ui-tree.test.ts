// The web app's message-tree logic (web/src/tree.ts): which branch is shown, and where "< 2/3 >" leads.
import { describe, expect, it } from 'vitest';
import { branchTo, buildTree, initialLeaf, moveAmongSiblings, newestLeaf, siblingsOf } from '../web/src/tree.js';

// u1 ─ a1
//    └ a2 ─ u2 ─ a3
// u3 (an edit of u1) ─ a4
const messages = [
  { id: 'u1', parentId: null },
  { id: 'a1', parentId: 'u1' },
  { id: 'a2', parentId: 'u1' },
  { id: 'u2', parentId: 'a2' },
  { id: 'a3', parentId: 'u2' },
  { id: 'u3', parentId: null },
  { id: 'a4', parentId: 'u3' },
];
const tree = buildTree(messages);
const msg = (id: string) => tree.byId.get(id)!;

describe('message trees', () => {
  it('shows the branch from the first message to the leaf', () => {
    expect(branchTo(tree, 'a3').map((m) => m.id)).toEqual(['u1', 'a2', 'u2', 'a3']);
    expect(branchTo(tree, 'unknown')).toEqual([]);
  });

  it('numbers siblings in the order they were written', () => {
    expect(siblingsOf(tree, msg('a2'))).toMatchObject({ index: 1, siblings: [{ id: 'a1' }, { id: 'a2' }] });
    expect(siblingsOf(tree, msg('u3')).index).toBe(1);
    expect(siblingsOf(tree, msg('a3')).siblings).toHaveLength(1);
  });

  it('moving to a sibling shows that branch down to its newest message', () => {
    expect(moveAmongSiblings(tree, msg('a1'), +1)).toBe('a3');
    expect(moveAmongSiblings(tree, msg('a2'), -1)).toBe('a1');
    expect(moveAmongSiblings(tree, msg('u3'), -1)).toBe('a3');
    expect(moveAmongSiblings(tree, msg('u3'), +1)).toBeNull();
    expect(newestLeaf(tree, 'u1')).toBe('a3');
  });

  it('opens a conversation on its stored branch, else on its newest message', () => {
    expect(initialLeaf(tree, 'a1', messages)).toBe('a1');
    expect(initialLeaf(tree, 'gone', messages)).toBe('a4');
    expect(initialLeaf(buildTree([]), null, [])).toBeNull();
  });

  it('never loops on a corrupt cycle', () => {
    const cyclic = buildTree([
      { id: 'x', parentId: 'y' },
      { id: 'y', parentId: 'x' },
    ]);
    expect(branchTo(cyclic, 'x').length).toBeLessThanOrEqual(3);
  });
});
