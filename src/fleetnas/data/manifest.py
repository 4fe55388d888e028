"""The public data files fleetnas uses: where each lives upstream, pinned, and its SHA-256.

Local layout (the ``data`` folder, same as ``../shared/data``) and upstream layout differ; each
:class:`DataFile` records both. Upstream files are fetched from ``raw.githubusercontent.com`` at
the commits below; a mirror replaces only that host (``{mirror}/{owner}/{repo}/{commit}/{path}``),
so a mirror is a plain static copy of the raw host's tree.

Digests and sizes were computed once from the copies in ``../shared/data``.
``ofa/ofa_specialized_subnet_names.txt``'s upstream location is inferred from the layout of
``han-cai/files`` (the other files' locations were checked against the upstream repositories and
the once-for-all code that downloads them).
"""

from __future__ import annotations

from dataclasses import dataclass

from fleetnas.errors import unknown

RAW_HOST = "https://raw.githubusercontent.com"


@dataclass(frozen=True)
class Source:
    """One upstream repository pinned to a commit; ``local`` prefix maps to ``upstream`` prefix."""

    name: str
    repo: str
    commit: str
    local: str
    upstream: str
    license: str


SOURCES: tuple[Source, ...] = (
    Source(
        "help",
        "HayeonLee/HELP",
        "45f70eb92d0d735970a33b608d1544ad3c52f285",
        "help/",
        "data/",
        "MIT",
    ),
    Source(
        "nats",
        "v-tao/nats-bench-landscape",
        "b307ae5fe6e8d7043cd4fe7d1c3532288271adb7",
        "nats/",
        "",
        "see upstream (derived from NATS-Bench, MIT)",
    ),
    Source(
        "apq",
        "mit-han-lab/apq",
        "428190a6198a522ca8af8e1b509657eb5688b2b0",
        "apq/",
        "lut/",
        "BSD-3-Clause",
    ),
    Source(
        "han-cai",
        "han-cai/files",
        "a7c9bcd525e17404968bc55aa43772bf7e51909e",
        "",
        "",
        "MIT (once-for-all assets)",
    ),
)


@dataclass(frozen=True)
class DataFile:
    """A public file: ``path`` relative to the data folder, its SHA-256 and size in bytes."""

    path: str
    sha256: str
    size: int

    @property
    def source(self) -> Source:
        for src in SOURCES:
            if src.local and self.path.startswith(src.local):
                return src
        return SOURCES[-1]

    @property
    def group(self) -> str:
        """``help-<space>`` for HELP files, else the top folder (``nats``, ``ofa``, ...)."""
        parts = self.path.split("/")
        return f"help-{parts[1]}" if parts[0] == "help" else parts[0]

    @property
    def upstream_path(self) -> str:
        src = self.source
        return src.upstream + self.path[len(src.local) :]

    @property
    def raw_path(self) -> str:
        """``owner/repo/commit/path``: the file's place under the raw host (or a mirror)."""
        src = self.source
        return f"{src.repo}/{src.commit}/{self.upstream_path}"

    def url(self, mirror: str | None = None) -> str:
        """Pinned upstream URL; ``mirror`` replaces ``https://raw.githubusercontent.com``."""
        return f"{(mirror or RAW_HOST).rstrip('/')}/{self.raw_path}"


def _f(path: str, sha256: str, size: int) -> DataFile:
    return DataFile(path, sha256, size)


FILES: tuple[DataFile, ...] = (
    _f(
        "apq/BitFusion_new.b1.dict",
        "8997e0a55466356a1ba141bbc22d84a55c605d6514db684bd0a02cd831be81e2",
        600812,
    ),
    _f(
        "help/fbnet/arch.pt",
        "ba5e1e45bb4134afd07b44ae8e69bf2576051935682368fd9c51cbde059c7fdc",
        259631,
    ),
    _f(
        "help/fbnet/hardware_embedding_index.pt",
        "e76207257f9c50706ec2cae178a50e8341956e7bed1e0221fd41a82bfd9670e5",
        431,
    ),
    _f(
        "help/fbnet/latency/1080ti_1.pt",
        "e8dc124d658407e6e8f2cc0642162bae3ce2b56c8dee44b4bc629f2ac8ca4c28",
        45423,
    ),
    _f(
        "help/fbnet/latency/1080ti_32.pt",
        "74c5c9801b4e6b7d0cb2fdd3c2d953fc9eea7569da9b9dbb5438c2c2b8687b85",
        45423,
    ),
    _f(
        "help/fbnet/latency/1080ti_64.pt",
        "ec8e443e814c739df4d7153bf1902b64b987e1e158bc780fa3579d4e481ba462",
        45423,
    ),
    _f(
        "help/fbnet/latency/2080ti_1.pt",
        "bc8ef435a048c8c44d5ab0b5636c9366bded86fcade1fd79c1bea2e0558e4fd7",
        45423,
    ),
    _f(
        "help/fbnet/latency/2080ti_32.pt",
        "35ade96b5e88c60f9a176909b7dfe8033830f983a212b89379e557c1c98f93c1",
        45423,
    ),
    _f(
        "help/fbnet/latency/2080ti_64.pt",
        "038c6438091fecb536c5e1fc70da13cbb2d99b4ef7ba44a7c545d2b141ec7654",
        45423,
    ),
    _f(
        "help/fbnet/latency/essential_ph_1.pt",
        "0855ddb3f4fbb17e0dea2ed252a1aac3c720590ec13c2b3c946d50dcc3a7915d",
        10415,
    ),
    _f(
        "help/fbnet/latency/eyeriss.pt",
        "eaf78708634cdada3fa52971a91fa851c41a3a3edc213c7d5dd3dc81ad205e7f",
        45423,
    ),
    _f(
        "help/fbnet/latency/fpga.pt",
        "f1f0542554cf205f93593814d9e5012df90139043c1b878a24d36d66b0a5adaf",
        45423,
    ),
    _f(
        "help/fbnet/latency/gold_6226.pt",
        "77a15ae6276ba8e5343fb3d2b9e7dd995629b0cca92af282d12619002745560c",
        45423,
    ),
    _f(
        "help/fbnet/latency/gold_6240.pt",
        "b3f7f9e419b67d2f5b2d6392f4968ea9a7a23f3078a4a8c882016ab72921dc3f",
        45423,
    ),
    _f(
        "help/fbnet/latency/pixel2.pt",
        "da0b0da71fc6195232a92d0cf2c23a4176756c8fbb600c74b3cc99d6c2e69d88",
        10415,
    ),
    _f(
        "help/fbnet/latency/pixel3.pt",
        "ccd89872782b2c4f4c7b163e65983cffb7a14782b3a03f2837ccf5083f00ebd8",
        45423,
    ),
    _f(
        "help/fbnet/latency/raspi4.pt",
        "51a9da87b02efb1a6ebd42e312c324abdaac0e75dbfc84825dff92b0804a44af",
        45423,
    ),
    _f(
        "help/fbnet/latency/samsung_a50.pt",
        "378f93b6a278598470d354073d983ffaa0e80f72884b5370da3bb70b6a8e0f1d",
        10415,
    ),
    _f(
        "help/fbnet/latency/samsung_s7.pt",
        "82660d5aa1839480d57c4b0188de510583f43f9c4b808eb5094a03280e8fe7eb",
        10415,
    ),
    _f(
        "help/fbnet/latency/silver_4114.pt",
        "908e18175a31ec455f63292025bba736ad1e52831950c15e472ce1670048ce94",
        45423,
    ),
    _f(
        "help/fbnet/latency/silver_4210r.pt",
        "e1732f783606639d40cb3ac40903e05c8dc06797be024c0643e8d14e7e270de5",
        45423,
    ),
    _f(
        "help/fbnet/latency/titan_rtx_1.pt",
        "d13dc078b2a0e4c9d984f29d48f26f5659cddd2d2f83f753a5b1c3f7999af337",
        45423,
    ),
    _f(
        "help/fbnet/latency/titan_rtx_32.pt",
        "3607673cd6a40a8290678b85d88d27c67429e8366394965c5f0d0fd649cf6f22",
        45423,
    ),
    _f(
        "help/fbnet/latency/titan_rtx_64.pt",
        "066bd14333eb53ce2076c290bdb8944db4919444a77813158580ff3bfa57901f",
        45423,
    ),
    _f(
        "help/fbnet/latency/titanx_1.pt",
        "2ab7914e5effece2a2e9c1f5f73826adc0e6c371a63802e91234a65936eb3068",
        45423,
    ),
    _f(
        "help/fbnet/latency/titanx_32.pt",
        "667e020f5d3977d347d0969c6e67362892ec5e0b483c10791f5de25eb1c196b4",
        45423,
    ),
    _f(
        "help/fbnet/latency/titanx_64.pt",
        "f2d09f8de4d6efbc6c504c3812eacbc9717bf813d1fcc55cae6ce5de405d2277",
        45423,
    ),
    _f(
        "help/fbnet/latency/titanxp_1.pt",
        "a4da9d78c7f3f39640051bcf3d843f26447254d50cab3beabdbab64e07fe27dd",
        45423,
    ),
    _f(
        "help/fbnet/latency/titanxp_32.pt",
        "fb059a030b7c0f9c80357122d81e3c336c50ddbbab82eae8e1a0d0435fe92208",
        45423,
    ),
    _f(
        "help/fbnet/latency/titanxp_64.pt",
        "6571f75d29bdbde84c1973b4e9d8e7a7205eae03d06299d1a5390b3c2939a888",
        45423,
    ),
    _f(
        "help/fbnet/metainfo.pt",
        "2d612b214ba2e446ec3f0b7e4f56a5f683ab2370dd09fc120d2e66ad78c2107b",
        579887,
    ),
    _f(
        "help/nasbench201/arch_generated_by_metad2a.txt",
        "7681da3acbda6dbdb8301e3c72537d9edcfa1f22ba4f7e3e903686ff0ac6648c",
        65493,
    ),
    _f(
        "help/nasbench201/architecture_config/asic-eyeriss/latency_3.9ms_accuracy_71.5.txt",
        "0ab91a3723bfcf5f66268b3d4b46b5b9e1ae5238e51f4df207a7bf77f40c58ed",
        88,
    ),
    _f(
        "help/nasbench201/architecture_config/asic-eyeriss/latency_5.1ms_accuracy_71.8.txt",
        "0cf58e6439e257309a8502886a5045cbba3bcff7b6ab35523718d1b18ca970a6",
        88,
    ),
    _f(
        "help/nasbench201/architecture_config/asic-eyeriss/latency_9.1ms_accuracy_73.5.txt",
        "ce6d2bcd55c0aabe684d351acd46426d5fb782189780a39db74751e2df2f526f",
        96,
    ),
    _f(
        "help/nasbench201/architecture_config/fpga/latency_3.8ms_accuracy_70.2.txt",
        "48d6029ad7348e03ebeda9471bc3205981cf378dffc524aa01a12d06530b764f",
        88,
    ),
    _f(
        "help/nasbench201/architecture_config/fpga/latency_4.7ms_accuracy_71.8.txt",
        "0cf58e6439e257309a8502886a5045cbba3bcff7b6ab35523718d1b18ca970a6",
        88,
    ),
    _f(
        "help/nasbench201/architecture_config/fpga/latency_7.4ms_accuracy_73.5.txt",
        "ce6d2bcd55c0aabe684d351acd46426d5fb782189780a39db74751e2df2f526f",
        96,
    ),
    _f(
        "help/nasbench201/architecture_config/gold_6226/latency_10.7ms_accuracy_70.2.txt",
        "48d6029ad7348e03ebeda9471bc3205981cf378dffc524aa01a12d06530b764f",
        88,
    ),
    _f(
        "help/nasbench201/architecture_config/gold_6226/latency_14.3ms_accuracy_72.1.txt",
        "066778a2c94dade5abeb9eb21802410df2d8c274bacf2bf3f6a0e7972712b99a",
        88,
    ),
    _f(
        "help/nasbench201/architecture_config/gold_6226/latency_8.0ms_accuracy_67.3.txt",
        "d84741848b882058c2a0652e8c728c89f9756e3e354b0ae3a694fdaecbe8c508",
        88,
    ),
    _f(
        "help/nasbench201/architecture_config/pixel2/latency_14.0ms_accuracy_69.7.txt",
        "cd0c5cfd4642bead1685070d7f884968b683b05b955975cd31fbe5184893d7f7",
        80,
    ),
    _f(
        "help/nasbench201/architecture_config/pixel2/latency_18.0ms_accuracy_71.8.txt",
        "0cf58e6439e257309a8502886a5045cbba3bcff7b6ab35523718d1b18ca970a6",
        88,
    ),
    _f(
        "help/nasbench201/architecture_config/pixel2/latency_25.0ms_accuracy_73.2.txt",
        "22b33a81625e34f823bd7d58b77c8085155ecbecd1b661731aa580a5492328cd",
        96,
    ),
    _f(
        "help/nasbench201/architecture_config/titan_rtx_256/latency_17.8ms_accuracy_69.7.txt",
        "cd0c5cfd4642bead1685070d7f884968b683b05b955975cd31fbe5184893d7f7",
        80,
    ),
    _f(
        "help/nasbench201/architecture_config/titan_rtx_256/latency_18.9ms_accuracy_71.5.txt",
        "0ab91a3723bfcf5f66268b3d4b46b5b9e1ae5238e51f4df207a7bf77f40c58ed",
        88,
    ),
    _f(
        "help/nasbench201/architecture_config/titan_rtx_256/latency_24.2ms_accuracy_71.8.txt",
        "0cf58e6439e257309a8502886a5045cbba3bcff7b6ab35523718d1b18ca970a6",
        88,
    ),
    _f(
        "help/nasbench201/hardware_embedding_index.pt",
        "6ca321dd4af6ca236430c3d9ffd0ed49319335be77dc4fc76ae94b597843f7f6",
        431,
    ),
    _f(
        "help/nasbench201/latency/1080ti_1.pt",
        "4028f52b2c2441da126932e3827ae11a7f76d39818c4374c1b9ab9df236e23f4",
        141039,
    ),
    _f(
        "help/nasbench201/latency/1080ti_256.pt",
        "435af0ccfab01f5dc55dc9f2e8b90ca37b396b2656e327bba5ee0b6eb9c24464",
        141039,
    ),
    _f(
        "help/nasbench201/latency/1080ti_32.pt",
        "affce4fcdcf6f28622365995ef2ec018bb07d448add59f80633c0978c393cdea",
        141039,
    ),
    _f(
        "help/nasbench201/latency/2080ti_1.pt",
        "38cf0e8f698abf8696c69b41a358fe9ddedf5d54cb1ae6f85b04dd8a8f89a1b3",
        141039,
    ),
    _f(
        "help/nasbench201/latency/2080ti_256.pt",
        "daee655c44c46955d8318ddf0fa39254e70bab1ae723a6abc53d7b7e4e1561ae",
        141039,
    ),
    _f(
        "help/nasbench201/latency/2080ti_32.pt",
        "ebc603ad325850663fc56c8e0fde52fadea28e585a8405864baa20f986eaf29d",
        141039,
    ),
    _f(
        "help/nasbench201/latency/essential_ph_1.pt",
        "a97165c8669a216b9ca046041c83a07352bd07f2a42e2d8fea8b51e7ddbcabf0",
        31663,
    ),
    _f(
        "help/nasbench201/latency/eyeriss.pt",
        "6f1dd2f8c0442289a09ab78e63e49bde96489f6d455cc33d5fa5aed37edb5d03",
        141039,
    ),
    _f(
        "help/nasbench201/latency/fpga.pt",
        "6a0333c1476a3ab039d8c39e5d42ac99efe9e7f3ff521289569013fa84233b28",
        141039,
    ),
    _f(
        "help/nasbench201/latency/gold_6226.pt",
        "6a00f63d14f67f8007ec04519f638a90aa6ed5357cf5c0e60c391df37f186c99",
        141039,
    ),
    _f(
        "help/nasbench201/latency/gold_6240.pt",
        "ac6dd41f183de69bba21dec3954ac73333b7dec871e0defbcce0572d82536890",
        141039,
    ),
    _f(
        "help/nasbench201/latency/pixel2.pt",
        "051845ddefc2bc138f21e2217f6c7827fe280c78375cbfb4b5bd252a888cb950",
        31663,
    ),
    _f(
        "help/nasbench201/latency/pixel3.pt",
        "cf1387da12e06b1d4541ce85f3ca4869d551084e09daf4acf024b6e21a80d465",
        141039,
    ),
    _f(
        "help/nasbench201/latency/raspi4.pt",
        "2fae425c50bcaef7aacc5391244cd0af98bfc7fba689a8741e461cb18192f57c",
        141039,
    ),
    _f(
        "help/nasbench201/latency/samsung_a50.pt",
        "0872cb4ec8ecc7ea1b3bd8c98dd705f2d0f6e4940f3af833b313e484de39b155",
        31663,
    ),
    _f(
        "help/nasbench201/latency/samsung_s7.pt",
        "dbae32364b882022adb044b2aa1af77b66f43a180930d9be4d4c13532429f0ea",
        31663,
    ),
    _f(
        "help/nasbench201/latency/silver_4114.pt",
        "0cce9dc9ba62ad81c21275298a88cb0e4534db6474a878f089df0abb13293421",
        141039,
    ),
    _f(
        "help/nasbench201/latency/silver_4210r.pt",
        "f976049bda39abde94b8f8cac90140cb78a5069fc145c462d6d6bc2f8450727a",
        141039,
    ),
    _f(
        "help/nasbench201/latency/titan_rtx_1.pt",
        "a854dac331e2a37d7dcd6ee1f63d1bc6d73ead3aeb0a86f803f45ea1b294859e",
        141039,
    ),
    _f(
        "help/nasbench201/latency/titan_rtx_256.pt",
        "cff1fba40b1743d3716cfb74c86ac2463d0682c146f356fa9095ac0d02dfb2a5",
        141039,
    ),
    _f(
        "help/nasbench201/latency/titan_rtx_32.pt",
        "1258bee5501fe191530b9898a4f55a122ab30beec9c6ea74598c47a0173babed",
        141039,
    ),
    _f(
        "help/nasbench201/latency/titanx_1.pt",
        "3461cc686263bd0ce4d4cd915bfc2fe067deb139cc68da387741bd6443434cb0",
        141039,
    ),
    _f(
        "help/nasbench201/latency/titanx_256.pt",
        "04ddb80719515687bd3d722235cd5da821b50bd453a9e580b1e9d321dfb92941",
        141039,
    ),
    _f(
        "help/nasbench201/latency/titanx_32.pt",
        "9c4ca69131e34451fb1e104caa47efbe12ffec3cc47bf051613674d7af044ff2",
        141039,
    ),
    _f(
        "help/nasbench201/latency/titanxp_1.pt",
        "935aa0041c6592bed90f2f94ff3b4d40e892c066467864b704e6583682a57b20",
        141039,
    ),
    _f(
        "help/nasbench201/latency/titanxp_256.pt",
        "9f03206bc62b0dcfc882820de07f55dc1fb7f43f57dfc977e4f0f4b019cb5041",
        141039,
    ),
    _f(
        "help/nasbench201/latency/titanxp_32.pt",
        "4b6db63c7a9fb55177aa2649d70031dd86d2ed1609467ef5803dc1089a73cb1b",
        141039,
    ),
    _f(
        "help/nasbench201/str_arch2idx.pt",
        "e1d7b7cc7cf51d7c3cd6f9e726e7395bea87d7ba674e26202fb8633f963aef0d",
        1536943,
    ),
    _f(
        "help/ofa/architecture_config/cpu_gold6226/latency_147ms_accuracy_77.6.json",
        "084467c5b483de3976e5990f7a289dc5253e235739d689e70920b2107b42aa4a",
        580,
    ),
    _f(
        "help/ofa/architecture_config/cpu_gold6226/latency_171ms_accuracy_78.1.json",
        "7d86cad9ddae82323e61b2b8ad23a71b03e053e40200d18f1e82464870fd55ab",
        580,
    ),
    _f(
        "help/ofa/architecture_config/gpu_titan_rtx_64/latency_20.3ms_accuracy_76.0.json",
        "261c370eac3ae579d0510e1f3fe65eeb45117bfc2e7f0ea13d6681cdce414102",
        580,
    ),
    _f(
        "help/ofa/architecture_config/gpu_titan_rtx_64/latency_23.1ms_accuracy_76.8.json",
        "66bfb15d6ca9bfe9c232548b25edef2deaaafe152ea0f754cc53a5fb1c63e014",
        580,
    ),
    _f(
        "help/ofa/architecture_config/gpu_titan_rtx_64/latency_28.6ms_accuracy_77.9.json",
        "f5767556512179a8d31a860cf2a76d824eeb0f89e53f9b0b0cb9a54706cc5be8",
        580,
    ),
    _f(
        "help/ofa/architecture_config/jetson_agx_xavier/latency_67.4ms_accuracy_75.9.json",
        "d7619cdca97f3b74ff611f9470bbeda7f83dff29246c0161b2d7742a014a4db8",
        580,
    ),
    _f(
        "help/ofa/architecture_config/jetson_agx_xavier/latency_76.4ms_accuracy_76.4.json",
        "5fc49c2dbbfb44e9e628c5e5a5c3675028e516d3778cccae338fda1e00a840c0",
        580,
    ),
    _f(
        "help/ofa/hardware_embedding_index.pt",
        "156e21eb398f63fbb201891c31b9ff57bdf0bd8611be9c54d967da9bc5638f08",
        431,
    ),
    _f(
        "help/ofa/latency/2080ti_1.pt",
        "fd02a4aa46d7ab468d9214ae20b73cbb58fd8d7a857df98861d83383744f9ca9",
        45423,
    ),
    _f(
        "help/ofa/latency/2080ti_32.pt",
        "0a40f72137451914e4296d8911c92429af357556c7caa5aa74803e17b2948eb6",
        45423,
    ),
    _f(
        "help/ofa/latency/2080ti_64.pt",
        "6b5b8ae9a25aa5c7df2a96c0e5d6baa91a0566fa935e8fcd709809fbfdee1bd8",
        45423,
    ),
    _f(
        "help/ofa/latency/titan_rtx_1.pt",
        "b308b08490eaf5af871bc0c5712a105e23c952ff55c5277abbc90e0ff7acf65a",
        45423,
    ),
    _f(
        "help/ofa/latency/titan_rtx_32.pt",
        "418618fe00b90d3495b2b4147689debb302dddcd038126c376b2bc4aef2867cf",
        45423,
    ),
    _f(
        "help/ofa/latency/titan_rtx_64.pt",
        "33bb74ee6430fb136ca00c41821842cf511eee5f28080b7745e6216e91d87b42",
        45423,
    ),
    _f(
        "help/ofa/latency/titan_xp_1.pt",
        "ab157a674a7ba7ad536a0afba7a791ab49fa5f3dbafa5f9628170b48030c2733",
        45423,
    ),
    _f(
        "help/ofa/latency/titan_xp_32.pt",
        "8e362f53dd522e6c26c54c7b4806301d3465947edf0935c9c1479aefee0271b6",
        45423,
    ),
    _f(
        "help/ofa/latency/titan_xp_64.pt",
        "9b377dc3de2c4ff12c735331762d7f957aa789a41583693082f33abfc4d6e018",
        45423,
    ),
    _f(
        "help/ofa/latency/v100_1.pt",
        "277d012e6c82cf20abee447edadd22da992a921de5e74376970a369466a48907",
        45423,
    ),
    _f(
        "help/ofa/latency/v100_32.pt",
        "41643776a003adeb16ec57314b1bd1d5145a12c3616c686161debdb7e45ea9e8",
        45423,
    ),
    _f(
        "help/ofa/latency/v100_64.pt",
        "577f48672ed029b11cbb66126ca92d4542f18472e2157965a4ec6852a327dfa2",
        45423,
    ),
    _f(
        "help/ofa/ofa_archs.pt",
        "77787b5c3e208b130282d4e239c1bb56e76fbb8f7d7f374c4fcc63df4970d574",
        904943,
    ),
    _f(
        "nats/nats_bench.csv",
        "cb5d777ec3368be83c8f9b3aa4d520696051cb0eb8d94b8f85b519f9ea4afa3e",
        3024008,
    ),
    _f(
        "ofa/acc_predictor.pth",
        "48685122a3540636b06699af66cd816456b25f29b69563e2fda9bed4018eeba0",
        1492497,
    ),
    _f(
        "ofa/note10/160_lookup_table.yaml",
        "a2671a45e9400542679ed03de946b45d6a35010f9ab21834af3e7ba8341d36d1",
        15088,
    ),
    _f(
        "ofa/note10/176_lookup_table.yaml",
        "34223ae037d5719a5f33261bdfd9341f590a2999edf520f174309605dc06307c",
        15047,
    ),
    _f(
        "ofa/note10/192_lookup_table.yaml",
        "0ff5ca0649e56ad34a42d6a8a6f20adb5121c8d12d135299397b310472db79e2",
        15076,
    ),
    _f(
        "ofa/note10/208_lookup_table.yaml",
        "41aa63af766a8298354e6aa5ae69d512ac68656a6e7d0a4fa5dc725c8d438633",
        15083,
    ),
    _f(
        "ofa/note10/224_lookup_table.yaml",
        "c13a9bcb3f4becae844bce4897129c4e42975984c1029cbd5acb48c970136530",
        15007,
    ),
    _f(
        "ofa/ofa_specialized_subnet_names.txt",
        "6b2dfe7c2beb0d9a3d5ba3ff93edbb9e7929cca698f3f30e45d6380e92098030",
        1866,
    ),
    _f(
        "proxylessnas/mobile_trim.yaml",
        "087e855ea77f9b257e72f3637333a3e0938f6df77f579520f16d057ac45380aa",
        10504,
    ),
)

_BY_PATH = {f.path: f for f in FILES}

#: Selection names accepted by :func:`select`: groups plus ``all``.
GROUPS: tuple[str, ...] = tuple(sorted({f.group for f in FILES}))


def get_file(path: str) -> DataFile:
    """The manifest entry for ``path`` (relative to the data folder)."""
    try:
        return _BY_PATH[path]
    except KeyError:
        raise unknown("public data file", path, list(_BY_PATH)) from None


def select(names: list[str] | tuple[str, ...] | None = None) -> list[DataFile]:
    """Files named by group (``help-nasbench201``, ``nats``, ...), path or ``all`` (default)."""
    if not names or "all" in names:
        return list(FILES)
    out: dict[str, DataFile] = {}
    for name in names:
        if name in GROUPS:
            out.update((f.path, f) for f in FILES if f.group == name)
        elif name in _BY_PATH:
            out[name] = _BY_PATH[name]
        else:
            raise unknown("data group or file", name, [*GROUPS, "all"])
    return list(out.values())
