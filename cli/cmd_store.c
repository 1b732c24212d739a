/* plan store <subcommand>: the store's own command table. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const char store_help[] =
    "usage: plan store <subcommand> [arguments]\n"
    "\n"
    "Work with the content-addressed store directly.\n"
    "\n"
    "Subcommands:\n";

const command plan_store_commands[] = {
    {"add", cmd_store_add, "copy a directory into the store",
     "usage: plan store add DIR --name NAME --version VERSION\n"
     "\n"
     "Copy the tree DIR into the store and print its store path.  The path is\n"
     "named by the content: adding the same tree again prints the same path and\n"
     "writes nothing.  The copy is read-only with normalised timestamps, and is\n"
     "registered atomically: an interrupted add leaves nothing behind.\n"
     "The new tree is scanned for the digests of every registered store path;\n"
     "those found are recorded as its references.\n"
     "\n"
     "Options:\n"
     "  --name NAME        the plan's name (letters, digits, . _ + -; no '-'\n"
     "                     followed by a digit)\n"
     "  --version VERSION  its version (same characters, starting with a digit)\n"
     "  --no-scan          do not look for references to other store paths\n"
     "  --threads N        hash and copy on N threads (default: one per core)\n"
     "\n"
     "Examples:\n"
     "  plan store add ./build/out --name hello --version 1.0.0\n"
     "  plan --json store add ./site --name site --version 2024.1\n"},
    {"export", cmd_store_export, "write store paths to a deterministic archive",
     "usage: plan store export PATH... [--closure] -o FILE\n"
     "\n"
     "Write the given store paths to FILE, a tar archive compressed with zstd,\n"
     "with the metadata 'plan store import' needs.  The same paths always give\n"
     "byte-identical archives.\n"
     "\n"
     "Options:\n"
     "  -o, --output FILE  where to write ('-' for stdout)\n"
     "  --closure          include everything the paths refer to, transitively\n"
     "\n"
     "Examples:\n"
     "  plan store export /var/plan/store/<digest>-hello-1.0 --closure -o hello.tar.zst\n"},
    {"hash", cmd_store_hash, "print the content hash of a directory",
     "usage: plan store hash DIR [--name NAME --version VERSION] [--mask DIGEST]\n"
     "\n"
     "Hash the tree DIR with the store's canonical serialization and print its\n"
     "content hash (blake2b:...).  Nothing is read from or written to the store;\n"
     "every file is read (no cache), on one thread per core.  With --name and\n"
     "--version, also print the store path the tree would get under --root.\n"
     "\n"
     "Options:\n"
     "  --name NAME, --version VERSION  also compute the store path\n"
     "  --mask DIGEST      hash as if DIGEST (32 characters) were 32 '0's\n"
     "  --threads N        hash on N threads (default: one per core)\n"
     "\n"
     "Examples:\n"
     "  plan store hash ./out\n"
     "  plan --json store hash ./out --name hello --version 1.0\n"},
    {"import", cmd_store_import, "import store paths from an export archive",
     "usage: plan store import FILE...\n"
     "\n"
     "Import the store paths of archives written by 'plan store export'; several\n"
     "archives are one batch (references may cross them, all or nothing).\n"
     "The archive is treated as hostile: unsafe entries (absolute or '..' paths,\n"
     "links out of the tree, devices, setuid bits, hard links) are refused,\n"
     "sizes are capped by the declared sizes, and every path is re-hashed before\n"
     "it is registered.  Any failure leaves the store unchanged.\n"
     "\n"
     "Examples:\n"
     "  plan store import hello.tar.zst\n"
     "  plan --root /tmp/other store import hello.tar.zst\n"},
    {"optimise", cmd_store_optimise, "hard-link identical files across the store",
     "usage: plan store optimise\n"
     "\n"
     "Replace identical files (same bytes and executable bit) in different store\n"
     "paths by hard links to one copy, and report the space saved.\n"
     "\n"
     "Examples:\n"
     "  plan store optimise\n"
     "  plan --json store optimise\n"},
    {"path-info", cmd_store_path_info, "show what the store knows about paths",
     "usage: plan store path-info PATH... [--json]\n"
     "\n"
     "Show name, version, digest, content hash, size, references, closure size\n"
     "and registration time of each store path.  PATH may be the full path, a\n"
     "path inside it, a link to it, its basename or its digest.\n"
     "\n"
     "Examples:\n"
     "  plan store path-info ./result\n"
     "  plan --json store path-info 0a1b2c3d4f5g6h7j8k9l0m1n2p3q4r5s\n"},
    {"repair", cmd_store_repair, "restore a damaged store path",
     "usage: plan store repair PATH [--from FILE]\n"
     "\n"
     "Restore a registered store path whose files were modified or deleted, from\n"
     "an export archive that contains it (--from), or else from the first\n"
     "registry that publishes it (its publisher signature checked with a trusted\n"
     "key, the archive with its signed hash).  The restored tree must hash to the\n"
     "registered content hash.\n"
     "\n"
     "Examples:\n"
     "  plan store verify --check-contents\n"
     "  plan store repair <digest>-hello-1.0 --from hello.tar.zst\n"
     "  plan store repair <digest>-hello-1.0      # from a registry\n"},
    {"verify", cmd_store_verify, "check the store against its database",
     "usage: plan store verify [--check-contents] [PATH...]\n"
     "\n"
     "Find registered paths that are missing or writable, directories in the\n"
     "store that are not registered and, with --check-contents, paths whose\n"
     "contents no longer match their hash.\n"
     "Exits 1 when anything is wrong.\n"
     "\n"
     "Examples:\n"
     "  plan store verify\n"
     "  plan store verify --check-contents ./result\n"},
};
const size_t plan_store_command_count =
    sizeof(plan_store_commands) / sizeof(plan_store_commands[0]);

static void print_store_help(void)
{
    fputs(store_help, stdout);
    for (size_t i = 0; i < plan_store_command_count; i++)
        printf("  %-10s %s\n", plan_store_commands[i].name, plan_store_commands[i].summary);
    fputs("\nRun 'plan store <subcommand> --help' for details.\n", stdout);
}

int cmd_store(cli *c, const command *cmd, int argc, char **argv)
{
    (void)cmd;
    if (argc < 2) {
        print_store_help();
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        print_store_help();
        return EXIT_OK;
    }
    const command *sub =
        cli_find_command(plan_store_commands, plan_store_command_count, argv[1]);
    if (!sub)
        return cli_unknown_command(c, plan_store_commands, plan_store_command_count, "store ",
                                   argv[1]);
    if (cli_wants_help(sub, argc - 1, argv + 1))
        return EXIT_OK;
    return sub->run(c, sub, argc - 1, argv + 1);
}
