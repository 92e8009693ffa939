/** The keyspace of the replication kill test and its consumer child. */
import { defineKeyspace } from "../../mod.ts";

/** Keys `g<k>` × n, values strings of varying length. */
export const replicationKeyspace = defineKeyspace({
  name: "replication",
  key: "grp:<g:str>:<n:u32be>",
  value: "utf8",
});
