"""Plain data the printing code lays out. No database, no Flask: the pack and
ship screens fill these from their models and hand them over."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .gs1 import make_sscc, validate_sscc


@dataclass(frozen=True)
class Address:
    name: str
    phone: str
    province: str
    city: str
    district: str
    line1: str
    postal_code: str = ""

    def region_text(self) -> str:
        """省 市 区, without repeating the city of a municipality (上海市 上海市 …)."""
        parts = [self.province]
        if self.city and self.city != self.province:
            parts.append(self.city)
        parts.append(self.district)
        return "".join(p for p in parts if p)

    def full_text(self) -> str:
        """The address as printed: 上海市浦东新区世纪大道100号."""
        return self.region_text() + self.line1


@dataclass(frozen=True)
class ShipFrom:
    """The sending node: its name and its address as one line of text."""

    node_name: str
    address: str
    phone: str = ""


@dataclass(frozen=True)
class LabelData:
    carrier_name: str
    service: str
    tracking_number: str
    tracking_url: str
    sscc: str
    ship_from: ShipFrom
    ship_to: Address
    order_ref: str
    fulfilment_ref: str
    parcel_no: int = 1
    parcel_count: int = 1
    weight_g: int = 0
    same_city: bool = False

    def __post_init__(self) -> None:
        validate_sscc(self.sscc)
        if not self.tracking_number or not all(32 < ord(c) < 127 for c in self.tracking_number):
            raise ValueError(f"a tracking number is printable ASCII without spaces, got {self.tracking_number!r}")
        if not 1 <= self.parcel_no <= self.parcel_count:
            raise ValueError(f"parcel {self.parcel_no} of {self.parcel_count} is not a parcel of this fulfilment")
        if self.weight_g < 0:
            raise ValueError(f"weight cannot be negative, got {self.weight_g} g")


@dataclass(frozen=True)
class ManifestParcel:
    tracking_number: str
    sscc: str
    fulfilment_ref: str
    weight_g: int

    def __post_init__(self) -> None:
        validate_sscc(self.sscc)


@dataclass(frozen=True)
class ManifestData:
    """A handover (交接单): the parcels a courier takes from a node in one go."""

    handover_ref: str
    carrier_name: str
    node_name: str
    opened_at: datetime
    closed_at: datetime | None
    parcels: tuple[ManifestParcel, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "parcels", tuple(self.parcels))

    @property
    def total_weight_g(self) -> int:
        return sum(p.weight_g for p in self.parcels)


@dataclass(frozen=True)
class PackingSlipLine:
    sku: str
    name: str
    quantity: int


@dataclass(frozen=True)
class PackingSlipData:
    fulfilment_ref: str
    order_ref: str
    ship_to: Address
    lines: tuple[PackingSlipLine, ...] = field(default_factory=tuple)
    node_name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "lines", tuple(self.lines))

    @property
    def total_quantity(self) -> int:
        return sum(line.quantity for line in self.lines)


SAMPLE_COMPANY_PREFIX = "6901234"  # GS1 China range (690–699); a made-up company


def sample_address() -> Address:
    return Address(
        name="王小明",
        phone="13800000000",
        province="上海市",
        city="上海市",
        district="浦东新区",
        line1="世纪大道100号 环球金融中心25楼2501室",
        postal_code="200120",
    )


def sample_label(parcel_no: int = 1, parcel_count: int = 2) -> LabelData:
    """A realistic label to print when there is no database: `luyue label test`."""
    tracking = "SF1402876543210"
    return LabelData(
        carrier_name="顺丰速运",
        service="标准快递",
        tracking_number=tracking,
        tracking_url=f"https://www.sf-express.com/chn/sc/waybill/list?no={tracking}",
        sscc=make_sscc(SAMPLE_COMPANY_PREFIX, 1234567),
        ship_from=ShipFrom("上海浦东仓", "上海市浦东新区川沙路5558号 3号库", "021-58000000"),
        ship_to=sample_address(),
        order_ref="TB20240601123456",
        fulfilment_ref="FF20240601-0007-1",
        parcel_no=parcel_no,
        parcel_count=parcel_count,
        weight_g=1250,
        same_city=False,
    )


def sample_manifest(parcels: int = 12) -> ManifestData:
    return ManifestData(
        handover_ref="HO20240601-SH01-003",
        carrier_name="顺丰速运",
        node_name="上海浦东仓",
        opened_at=datetime(2024, 6, 1, 16, 5),
        closed_at=datetime(2024, 6, 1, 17, 42),
        parcels=tuple(
            ManifestParcel(
                tracking_number=f"SF14028765{43210 + i:05d}",
                sscc=make_sscc(SAMPLE_COMPANY_PREFIX, 1234567 + i),
                fulfilment_ref=f"FF20240601-{7 + i // 2:04d}-{i % 2 + 1}",
                weight_g=800 + 137 * i,
            )
            for i in range(parcels)
        ),
    )


def sample_packing_slip() -> PackingSlipData:
    return PackingSlipData(
        fulfilment_ref="FF20240601-0007-1",
        order_ref="TB20240601123456",
        ship_to=sample_address(),
        node_name="上海浦东仓",
        lines=(
            PackingSlipLine("6901234567892", "农夫山泉 饮用天然水 550ml×24瓶", 2),
            PackingSlipLine("6901234000017", "维达 抽纸 3层130抽×6包", 1),
            PackingSlipLine("6901234000024", "金龙鱼 大米 5kg", 1),
        ),
    )
