"""Bad VCFs (issue 17, items 9, 13, 14): a malformed line names the file and line; the fix for an
unindexed, plain-gzip, plain-text or unsorted VCF never writes over the input and works as written."""
import gzip
import hashlib
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pysam
import pytest

from kipoi_seq2exp.data.errors import DataInputError
from kipoi_seq2exp.data.synthetic import random_dna, write_fasta, write_table
from kipoi_seq2exp.data.variants import check_vcf, iter_variant_windows

L = 2000
SEQ = random_dna(6000, np.random.default_rng(17))
HEADER = "##fileformat=VCFv4.2\n##contig=<ID=chr1,length=6000>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
GOOD = [f"chr1\t{pos}\tv{pos}\t{SEQ[pos - 1]}\t{'C' if SEQ[pos - 1] != 'C' else 'G'}\t.\tPASS\t."
        for pos in (2901, 3001, 3101)]
README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """Variant windows import kipoiseq, which imports kipoi, which writes ~/.kipoi."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def world(tmp_path):
    write_fasta(tmp_path / "genome.fa", {"chr1": SEQ})
    write_table(tmp_path / "genes.tsv", [{"gene_id": "g1", "chrom": "chr1", "tss": 3000, "strand": "+"}])
    return {"fasta": str(tmp_path / "genome.fa"), "genes": str(tmp_path / "genes.tsv"), "dir": tmp_path}


def write_vcf_text(path: Path, records: list[str], compression: str = "bgzf", index: bool = False) -> str:
    """Write ``records`` under a VCF header as plain text, plain gzip or bgzip (optionally tabix-indexed)."""
    text = HEADER + "".join(line + "\n" for line in records)
    if compression == "text":
        path.write_text(text)
    elif compression == "gzip":
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        plain = path.with_name(path.name + ".txt")
        plain.write_text(text)
        pysam.tabix_compress(str(plain), str(path), force=True)
        if index:
            pysam.tabix_index(str(path), preset="vcf", force=True)
    return str(path)


def windows(vcf: str, world) -> list:
    return list(iter_variant_windows(vcf, world["genes"], world["fasta"], L, progress=False))


MALFORMED = {
    "too_few_columns": ("chr1\t3050\tx\tA", r"VCF record has 4 tab-separated column\(s\), a VCF record needs 8"),
    "pos_not_integer": ("chr1\tabc\tx\tA\tC\t.\tPASS\t.", r"POS 'abc' is not a positive integer"),
    "pos_zero": ("chr1\t0\tx\tA\tC\t.\tPASS\t.", r"POS '0' is not a positive integer"),
    "spaces_not_tabs": ("chr1 3050 x A C . PASS .", r"VCF record has 1 tab-separated column"),
    "empty_ref": ("chr1\t3050\tx\t\tC\t.\tPASS\t.", r"REF '' is not a DNA allele \(letters A, C, G, T, N or IUPAC codes\)"),
    "empty_line": ("", r"empty line among the VCF records"),
    "hash_line": ("#note", r"'#' line after the #CHROM header line"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_record_names_file_line_and_fix(world, case):
    bad, what = MALFORMED[case]
    # tabix indexes the lines it can parse (the index is no guard); bgzip alone for the others
    vcf = write_vcf_text(world["dir"] / "calls.vcf.gz", [GOOD[0], bad, *GOOD[1:]])
    try:
        pysam.tabix_index(vcf, preset="vcf", force=True)
    except OSError:
        pass
    pattern = rf"^{re.escape(vcf)}, line 5: {what}.*Fix: .+\.$"
    with pytest.raises(DataInputError, match=pattern):
        check_vcf(vcf)
    with pytest.raises(DataInputError, match=pattern):
        windows(vcf, world)


def test_garbage_line_is_an_error_not_a_crash(world):
    """A line without tabs crashed the process inside htslib (segmentation fault): run it apart."""
    vcf = write_vcf_text(world["dir"] / "calls.vcf.gz", [GOOD[0], "this is not a vcf line at all"], index=False)
    code = ("import sys; from kipoi_seq2exp.data.variants import iter_variant_windows\n"
            "try:\n    list(iter_variant_windows(*sys.argv[1:4], 2000, progress=False))\n"
            "except ValueError as err:\n    print(type(err).__name__, err); sys.exit(3)\n")
    run = subprocess.run([sys.executable, "-c", code, vcf, world["genes"], world["fasta"]],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 3, run.stderr[-2000:]
    assert run.stdout.startswith(f"DataInputError {vcf}, line 5: VCF record has 1 tab-separated column")


def test_record_before_header_and_missing_header(world):
    no_header = world["dir"] / "noheader.vcf.gz"
    plain = world["dir"] / "noheader.txt"
    plain.write_text(GOOD[0] + "\n")
    pysam.tabix_compress(str(plain), str(no_header))
    with pytest.raises(DataInputError, match=r"noheader\.vcf\.gz, line 1: .* comes before the VCF header line.*Fix: "):
        check_vcf(str(no_header))
    only_meta = world["dir"] / "meta.vcf"
    only_meta.write_text("##fileformat=VCFv4.2\n")
    with pytest.raises(DataInputError, match=r"meta\.vcf: no '#CHROM .* header line: not a VCF\. Fix: "):
        check_vcf(str(only_meta))


def commands_of(message: str) -> list[str]:
    return re.findall(r"`([^`]+)`", message)


def written_files(command: str) -> set[str]:
    """Files a fix command writes: shell redirections, ``-o``, and the pysam calls' outputs."""
    tokens = shlex.split(command.replace("(", " ( ").replace(")", " ) "))
    out = {tokens[i + 1] for i, t in enumerate(tokens[:-1]) if t in (">", "-o")}
    out |= set(re.findall(r'BGZFile\("([^"]+)"', command))
    out |= set(re.findall(r'tabix_compress\("[^"]+", "([^"]+)"\)', command))
    return out


BROKEN = {  # case -> (file name, compression, indexed, records, what the message says)
    "not_indexed": ("calls.vcf.gz", "bgzf", False, GOOD, "VCF has no tabix index"),
    "plain_gzip": ("calls.vcf.gz", "gzip", False, GOOD, r"VCF is not bgzip-compressed \(plain gzip"),
    "plain_text": ("calls.vcf", "text", False, GOOD, r"VCF is not bgzip-compressed \(plain text\)"),
    "plain_text_named_gz": ("calls.vcf.gz", "text", False, GOOD, r"VCF is not bgzip-compressed \(plain text\)"),
    "unsorted_bgzf": ("calls.vcf.gz", "bgzf", False, GOOD[::-1],
                      r"line 5: chr1:3001 after chr1:3101: VCF records are not sorted"),
    "unsorted_text": ("calls.vcf", "text", False, [GOOD[1], GOOD[0], GOOD[2]],
                      r"line 5: chr1:2901 after chr1:3001: VCF records are not sorted"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_fix_never_writes_the_input_and_works_as_written(world, case):
    name, compression, indexed, records, what = BROKEN[case]
    vcf = write_vcf_text(world["dir"] / name, records, compression, indexed)
    before = hashlib.sha256(Path(vcf).read_bytes()).hexdigest()
    with pytest.raises(DataInputError, match=rf"^{re.escape(vcf)}(, |: ){what}.*Fix: ") as caught:
        windows(vcf, world)
    message = str(caught.value)
    commands = commands_of(message)
    assert len(commands) >= 2 and any("pysam" in c for c in commands), message  # htslib and a pysam way
    for command in commands:
        assert vcf not in written_files(command), command
    out = re.search(r"then pass (\S+?)\.?$", message)
    out = out.group(1) if out else vcf  # an index alone: the same file, indexed
    assert "tabix" in message and (out == vcf) == (case == "not_indexed")

    pysam_way = next(c for c in commands if "pysam" in c)
    subprocess.run(pysam_way, shell=True, check=True, cwd=world["dir"], executable="/bin/bash")
    assert hashlib.sha256(Path(vcf).read_bytes()).hexdigest() == before
    check_vcf(out)
    assert sorted(w.variant.pos for w in windows(out, world)) == [2901, 3001, 3101]


@pytest.mark.skipif(not all(map(shutil.which, ("bgzip", "tabix", "bcftools"))), reason="htslib tools not installed")
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_htslib_fix_works_as_written(world, case):
    name, compression, indexed, records, _ = BROKEN[case]
    vcf = write_vcf_text(world["dir"] / name, records, compression, indexed)
    before = hashlib.sha256(Path(vcf).read_bytes()).hexdigest()
    with pytest.raises(DataInputError) as caught:
        check_vcf(vcf)
    subprocess.run(commands_of(str(caught.value))[0], shell=True, check=True, cwd=world["dir"], executable="/bin/bash")
    assert hashlib.sha256(Path(vcf).read_bytes()).hexdigest() == before
    out = re.search(r"then pass (\S+?)\.?$", str(caught.value))
    out = out.group(1) if out else vcf
    check_vcf(out)
    assert sorted(w.variant.pos for w in windows(out, world)) == [2901, 3001, 3101]


def test_readme_says_how_to_install_kipoi_veff():
    """`python -m kipoi_veff` after the quick start: No module named kipoi_veff (it is not a dependency)."""
    text = README.read_text()
    section = text[text.index("## Variant effects"):]
    section = section[: section.index("\n## ", 1)]
    assert "pip install --no-deps kipoi-veff==0.3.1" in section
    assert "pysam" in section  # bgzip / tabix are often not installed


def test_readme_registers_before_every_seq2exp_source_command():
    """Past the quick start, a reader meets `--source seq2exp` only after the step that registers it."""
    text = README.read_text()
    text = text[text.index("\n## ", text.index("## Quick start")):]
    assert text.index("python -m kipoi_seq2exp register") < text.index("--source seq2exp")


def test_a_vcf_that_passed_is_read_once_until_it_changes(world, monkeypatch):
    from kipoi_seq2exp.data import variants

    reads = []
    monkeypatch.setattr(variants, "_first_unsorted", lambda path: reads.append(path))
    vcf = write_vcf_text(world["dir"] / "once.vcf.gz", GOOD, index=True)
    check_vcf(vcf)
    assert len(windows(vcf, world)) == 3  # scoring checks its input again: answered from the first check
    assert len(reads) == 1
    write_vcf_text(world["dir"] / "once.vcf.gz", GOOD[:2], index=True)  # another version of the file
    check_vcf(vcf)
    assert len(reads) == 2
