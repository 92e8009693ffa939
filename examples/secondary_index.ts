/**
 * A secondary index kept consistent with its primary records inside transactions: users by id,
 * and an index of users by city. Every change of a user reads the old record and writes the
 * record and the index entries it implies in one transaction, so after any crash, and whatever
 * async tasks race on the same users, every index entry points at a user in that city and every
 * user has exactly its index entry.
 *
 * Key layout (one keyspace, record kind first):
 *
 *   ix:user:<id>:""      -> { name, city }   the primary record
 *   ix:city:<city>:<id>  -> null             the index: a prefix scan lists a city's users
 *
 * Run: bun examples/secondary_index.ts [dataDir]
 */
import { defineKeyspace, TransactionConflictError, ZoneTree } from "../mod.ts";

/** The keyspace of the store. */
export const indexKeyspace = defineKeyspace({
  name: "users-by-city",
  key: "ix:<kind:str>:<a:str>:<b:str>",
  value: "json",
});

/** A user. */
export interface User {
  name: string;
  city: string;
}

type Tree = ZoneTree<
  { kind: string; a: string; b: string },
  unknown,
  [string, string, string],
  unknown
>;

/** Users with an index by city. */
export class UserStore {
  private constructor(readonly tree: Tree) {}

  /** Opens (or creates) the store in `dir`. */
  static async open(dir: string): Promise<UserStore> {
    return new UserStore(await ZoneTree.open({ dir, keyspace: indexKeyspace }) as unknown as Tree);
  }

  /**
   * Inserts or replaces user `id` and moves its index entry. `between` is awaited after the
   * reads and before the commit (a real caller's async work); a racing change of the same user
   * makes the commit conflict, and the change is retried from fresh reads.
   */
  async put(id: string, user: User, between?: () => Promise<void>): Promise<void> {
    await this.#retry(async () => {
      const tx = this.tree.transaction();
      const old = tx.get(["user", id, ""]) as User | undefined;
      await between?.();
      if (old && old.city !== user.city) tx.delete(["city", old.city, id]);
      tx.upsert(["city", user.city, id], null);
      tx.upsert(["user", id, ""], user);
      tx.commit();
    });
  }

  /** Deletes user `id` and its index entry. */
  async delete(id: string, between?: () => Promise<void>): Promise<void> {
    await this.#retry(async () => {
      const tx = this.tree.transaction();
      const old = tx.get(["user", id, ""]) as User | undefined;
      await between?.();
      if (!old) return tx.rollback();
      tx.delete(["city", old.city, id]);
      tx.delete(["user", id, ""]);
      tx.commit();
    });
  }

  async #retry(attempt: () => Promise<void>): Promise<void> {
    for (let i = 0;; i++) {
      try {
        return await attempt();
      } catch (e) {
        if (!(e instanceof TransactionConflictError) || i >= 100) throw e;
      }
    }
  }

  /** User `id`. */
  get(id: string): User | undefined {
    return this.tree.get(["user", id, ""]) as User | undefined;
  }

  /** The users in `city`, by id, through the index. */
  *inCity(city: string): Generator<[string, User]> {
    for (const key of this.tree.keys({ prefix: ["city", city] })) yield [key.b, this.get(key.b)!];
  }

  /** Problems with the index (empty: consistent). */
  verify(): string[] {
    const problems: string[] = [];
    let users = 0;
    for (const [key, value] of this.tree.range({ prefix: ["user"] })) {
      users++;
      if (!this.tree.has(["city", (value as User).city, key.a])) {
        problems.push(`user ${key.a} has no index entry for ${(value as User).city}`);
      }
    }
    let entries = 0;
    for (const key of this.tree.keys({ prefix: ["city"] })) {
      entries++;
      const user = this.get(key.b);
      if (user?.city !== key.a) {
        problems.push(`index ${key.a}/${key.b} points at ${user ? user.city : "no user"}`);
      }
    }
    if (entries !== users) problems.push(`${entries} index entries for ${users} users`);
    return problems;
  }

  /** Closes the store. */
  close(): Promise<void> {
    return this.tree.close();
  }
}

if (import.meta.main) {
  const nodeFs = await import("node:fs");
  const os = await import("node:os");
  const dir = process.argv[2] ?? nodeFs.mkdtempSync(`${os.tmpdir()}/zt-secondary-index-`);
  const store = await UserStore.open(dir);
  await store.put("u1", { name: "Ada", city: "London" });
  await store.put("u2", { name: "Grace", city: "New York" });
  await store.put("u3", { name: "Alan", city: "London" });
  // Two tasks move the same user at once: one commit conflicts and is redone on fresh reads.
  const pause = () => new Promise<void>((r) => setTimeout(r, 5));
  await Promise.all([
    store.put("u1", { name: "Ada", city: "Paris" }, pause),
    store.put("u1", { name: "Ada", city: "Oslo" }, pause),
  ]);
  await store.delete("u3");
  for (const city of ["London", "New York", "Paris", "Oslo"]) {
    console.log(`${city}: ${[...store.inCity(city)].map(([, u]) => u.name).join(", ") || "-"}`);
  }
  const problems = store.verify();
  console.log(problems.length === 0 ? "index consistent" : problems.join("\n"));
  await store.close();
  if (process.argv[2] === undefined) nodeFs.rmSync(dir, { recursive: true, force: true });
  if (problems.length > 0) process.exit(1);
}
