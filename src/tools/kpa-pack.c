/* kpa-pack: the vendor's tool that builds a KPA package from a manifest and
 * the files it lists. Argument parsing and printing only; kpa_pack() in
 * libkpa does the work. */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kpa/oci-image.h"
#include "kpa/package.h"
#include "cli.h"

static const char *const compression_names[] = {
        [KPA_COMPRESS_ZSTD] = "zstd",
        [KPA_COMPRESS_XZ] = "xz",
        [KPA_COMPRESS_GZIP] = "gzip",
        [KPA_COMPRESS_NONE] = "none",
};

static void usage(void)
{
        printf("Usage: %1$s -o OUTPUT.kpa --manifest MANIFEST.json [OPTION]... [FILE|DIR]...\n"
               "       %1$s --oci-image=DIR [--tag=TAG] PACKAGE.kpa\n"
               "       %1$s --new-key NAME\n",
               cli_program());
        fputs("\n"
              "Build a KPA package: one file holding an application's manifest and its\n"
              "components (programs, libraries, resources, manifest translations), ready\n"
              "for kpa-install(8).\n"
              "\n"
              "The manifest lists the components; kpa-pack finds each one among the given\n"
              "files and directories, fills in every empty or absent \"digest\" (SHA-256),\n"
              "checks the digests that are given, and writes the package atomically.\n"
              "  - A FILE supplies the component whose \"name\" is the file's name.\n"
              "  - In a DIR, a component is looked for at DIR/INSTALL-PATH (DIR/bin/app,\n"
              "    DIR/lib/libx.so, DIR/res/img/logo.png, DIR/manifest_locales/en.json),\n"
              "    then at DIR/DIRECTORYPATH/NAME for a res component, then at DIR/NAME.\n"
              "    Every file in DIR must be a component (or the manifest itself).\n"
              "\n"
              "Options:\n"
              "  -o, --output=FILE       write the package to FILE (required)\n"
              "  -m, --manifest=FILE     the application manifest, manifest.json (required)\n"
              "      --compress=METHOD   zstd (the default), xz, gzip or none\n"
              "      --mtime=EPOCH       time stamp of every member, in seconds since 1970\n"
              "                          (default: $SOURCE_DATE_EPOCH if set, else 0)\n"
              "      --sign=NAME.key     sign the package with this secret key (Ed25519)\n"
              "      --new-key=NAME      make a key pair for --sign: NAME.key, the secret\n"
              "                          key (mode 0600), and NAME.pub, the public key that\n"
              "                          devices trust; never overwrites a file\n"
              "      --oci-image=DIR     instead of building a package, turn the package\n"
              "                          PACKAGE.kpa into an OCI image layout in DIR (new\n"
              "                          or empty): one layer with the package at /APP_ID,\n"
              "                          its manifest (and signature) in the config's\n"
              "                          labels; kpa-install oci:DIR takes it back\n"
              "      --tag=TAG           the image's tag (default: the application version)\n"
              "  -q, --quiet             print nothing but errors\n"
              "  -v, --verbose           list each member as it is added\n"
              "  -h, --help              show this help and exit\n"
              "      --version           show the version and exit\n"
              "\n"
              "The same inputs give the same package, byte for byte.\n"
              "Exit status: 0 on success, 1 on failure, 2 on a usage error.\n"
              "\n"
              "Example:\n",
              stdout);
        printf("  %s -o hello.kpa --manifest hello/manifest.json hello/\n"
               "\n"
               "See kpa-pack(1), kpa-manifest(5) and kpa-install(8).\n",
               cli_program());
}

static void print_member(const char *member, const char *source, uint64_t size,
                         const char *digest, void *userdata)
{
        printf("%s <- %s (%" PRIu64 " bytes, sha256 %.12s...)\n", member, source, size, digest);
        if (userdata)
                (*(size_t *)userdata)++;
}

static void count_member(const char *member, const char *source, uint64_t size,
                         const char *digest, void *userdata)
{
        (*(size_t *)userdata)++;
}

/* A non-negative decimal count of seconds. */
static int parse_epoch(const char *s, int64_t *out)
{
        int64_t v = 0;
        if (!s || !*s)
                return -1;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9' || v > (INT64_MAX - 9) / 10)
                        return -1;
                v = v * 10 + (*p - '0');
        }
        *out = v;
        return 0;
}

enum { OPT_COMPRESS = 0x100, OPT_MTIME, OPT_VERSION, OPT_SIGN, OPT_NEW_KEY, OPT_OCI_IMAGE, OPT_TAG };

static kpa_pack_options opts;
static const char *new_key, *oci_image, *oci_tag;
static bool quiet, verbose;
static bool packing_option; /* --compress or --mtime: they shape a new package */

static int parse_option(int c, const char *arg)
{
        switch (c) {
        case 'o': opts.output_path = arg; return 0;
        case 'm': opts.manifest_path = arg; return 0;
        case OPT_COMPRESS:
                packing_option = true;
                if (kpa_compression_from_string(arg, &opts.compression) < 0)
                        return cli_usage_error("unknown compression '%s' (zstd, xz, gzip or none)",
                                               arg);
                return 0;
        case OPT_MTIME:
                packing_option = true;
                if (parse_epoch(arg, &opts.mtime) < 0)
                        return cli_usage_error("--mtime: '%s' is not a number of seconds since 1970",
                                               arg);
                return 0;
        case OPT_SIGN: opts.sign_key = arg; return 0;
        case OPT_NEW_KEY: new_key = arg; return 0;
        case OPT_OCI_IMAGE: oci_image = arg; return 0;
        case OPT_TAG: oci_tag = arg; return 0;
        case 'q': quiet = true, verbose = false; return 0;
        case 'v': verbose = true, quiet = false; return 0;
        case 'h': usage(); exit(EXIT_SUCCESS);
        case OPT_VERSION: printf("%s %s\n", cli_program(), PACKAGE_VERSION); exit(EXIT_SUCCESS);
        default: return cli_usage_error("unknown option");
        }
}

/* --new-key NAME: NAME.key and NAME.pub, and what to do with them */
static int make_key(int operands)
{
        if (opts.output_path || opts.manifest_path || opts.sign_key || operands > 0)
                return cli_usage_error("--new-key makes a key pair and no package: give it alone");
        char fingerprint[KPA_FINGERPRINT_TEXT_LEN + 1];
        kpa_error err;
        if (kpa_key_generate(new_key, fingerprint, &err) < 0) {
                cli_report(&err);
                return EXIT_FAILURE;
        }
        if (!quiet)
                printf("%1$s.key: the secret key (mode 0600): keep it private; sign with --sign "
                       "%1$s.key\n"
                       "%1$s.pub: the public key, fingerprint %2$s: trust it on a device by "
                       "copying it into %3$s/\n",
                       new_key, fingerprint, kpa_trusted_keys_default_dir());
        return EXIT_SUCCESS;
}

/* --oci-image DIR PACKAGE.kpa */
static int make_oci_image(int argc, char **argv)
{
        if (opts.output_path || opts.manifest_path || opts.sign_key || new_key || packing_option)
                return cli_usage_error("--oci-image turns an existing package into an image: "
                                       "give it the package alone (no -o, --manifest, --sign, "
                                       "--compress, --mtime, --new-key)");
        if (argc - optind != 1)
                return cli_usage_error("--oci-image takes one PACKAGE.kpa");
        const char *package = argv[optind];
        kpa_oci_image_result res;
        kpa_oci_image_result_init(&res);
        kpa_error err;
        if (kpa_oci_image_write(package, oci_image, oci_tag, &res, &err) < 0) {
                cli_report(&err);
                return EXIT_FAILURE;
        }
        if (!quiet)
                printf("%s: OCI image of %s, tag %s, %s, layer %llu bytes%s\n", oci_image, package,
                       res.tag, res.digest, (unsigned long long)res.layer_size,
                       res.signed_package ? ", signature kept" : "");
        if (fflush(stdout) != 0 || ferror(stdout)) {
                cli_error("write error on standard output");
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "output", required_argument, NULL, 'o' },
                { "manifest", required_argument, NULL, 'm' },
                { "compress", required_argument, NULL, OPT_COMPRESS },
                { "mtime", required_argument, NULL, OPT_MTIME },
                { "sign", required_argument, NULL, OPT_SIGN },
                { "new-key", required_argument, NULL, OPT_NEW_KEY },
                { "oci-image", required_argument, NULL, OPT_OCI_IMAGE },
                { "tag", required_argument, NULL, OPT_TAG },
                { "quiet", no_argument, NULL, 'q' },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, OPT_VERSION },
                { NULL, 0, NULL, 0 },
        };

        cli_init(argv[0]);
        kpa_pack_options_init(&opts);
        int r = cli_parse_options(argc, argv, "o:m:qvh", longopts, parse_option);
        if (r)
                return r;
        if (oci_image)
                return make_oci_image(argc, argv);
        if (oci_tag)
                return cli_usage_error("--tag names the image of --oci-image");
        if (new_key)
                return make_key(argc - optind);
        if (!opts.output_path)
                return cli_usage_error("no output given (-o OUTPUT.kpa)");
        if (!opts.manifest_path)
                return cli_usage_error("no manifest given (--manifest MANIFEST.json)");
        opts.inputs = (const char *const *)(argv + optind);
        opts.n_inputs = (size_t)(argc - optind);

        const char *sde = getenv("SOURCE_DATE_EPOCH");
        int64_t ignored;
        if (opts.mtime < 0 && sde && *sde && parse_epoch(sde, &ignored) < 0 && !quiet)
                cli_error("warning: ignoring SOURCE_DATE_EPOCH='%s': not a number of seconds",
                          sde);

        size_t members = 0;
        opts.on_member = verbose ? print_member : count_member;
        opts.userdata = &members;
        kpa_error err;
        if (kpa_pack(&opts, &err) < 0) {
                fflush(stdout);
                cli_report(&err);
                return EXIT_FAILURE;
        }
        if (!quiet) {
                struct stat st;
                long long size = stat(opts.output_path, &st) == 0 ? (long long)st.st_size : -1;
                printf("%s: %zu component%s, %lld bytes (%s)", opts.output_path,
                       members ? members - 1 : 0, members == 2 ? "" : "s", size,
                       compression_names[opts.compression]);
                char name[KPA_KEY_NAME_MAX + 1], fingerprint[KPA_FINGERPRINT_TEXT_LEN + 1];
                if (opts.sign_key && kpa_key_describe(opts.sign_key, name, fingerprint, &err) == 0)
                        printf(", signed by %s (fingerprint %s)", name, fingerprint);
                printf("\n");
        }
        if (fflush(stdout) != 0 || ferror(stdout)) {
                cli_error("write error on standard output");
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}
