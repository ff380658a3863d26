"""Masking rules (table tests, no I/O)."""

from __future__ import annotations

import pytest

from callcenter.privacy import full_address, mask_address, mask_name, mask_numbers_in_text, mask_phone


@pytest.mark.parametrize(("number", "masked"), [
    ("13800138000", "138****8000"),
    ("19912345678", "199****5678"),
    ("01088886666", "010****6666"),
    ("02012345678", "020****5678"),
    ("075588886666", "0755****6666"),
    ("07558888666", "0755****8666"),
    ("0012125550100", "001****0100"),
    ("4008001234", "400****1234"),
    ("8008108888", "800****8888"),
    ("88886666", "****6666"),
    ("1380013800", "****3800"),
    ("8888666", "*****66"),
    ("95588", "***88"),
    ("10086", "***86"),
    ("110", "***"),
    ("", ""),
    ("138-0013-8000", "138****8000"),  # separators are ignored
])
def test_mask_phone(number: str, masked: str) -> None:
    assert mask_phone(number) == masked


@pytest.mark.parametrize("number", ["13800138000", "01088886666", "075588886666", "0012125550100",
                                    "4008001234", "88886666", "95588"])
def test_mask_phone_reveals_at_most_prefix_and_last_four(number: str) -> None:
    masked = mask_phone(number)
    shown = sum(c.isdigit() for c in masked)
    assert shown <= 4 + 4
    assert shown < len(number) - 2 or len(number) <= 5
    assert number not in masked


@pytest.mark.parametrize(("name", "masked"), [
    ("张三", "张*"),
    ("王小明", "王**"),
    (" 李四 ", "李*"),
    ("欧阳娜娜", "欧阳**"),
    ("欧阳修", "欧阳*"),
    ("司马光", "司马*"),
    ("诸葛亮", "诸葛*"),
    ("上官婉儿", "上官**"),
    ("东方不败", "东方**"),
    ("皇甫嵩", "皇甫*"),
    ("尉迟恭", "尉迟*"),
    ("公孙胜", "公孙*"),
    ("慕容复", "慕容*"),
    ("长孙无忌", "长孙**"),
    ("宇文泰", "宇文*"),
    ("司徒雷登", "司徒**"),
    ("夏侯惇", "夏侯*"),
    ("轩辕剑", "轩辕*"),
    ("欧阳", "欧*"),  # only the surname: keep one character
    ("张", "张"),
    ("张先生", "张**"),
    ("阿依古丽·买买提", "阿***·***"),
    ("Zhang San", "Z**** S**"),
    ("zhang san", "z**** s**"),
    ("Mary-Ann Lee", "M***-A** L**"),
    ("O'Brien", "O'B****"),
    ("Li", "L*"),
    ("", ""),
    ("   ", ""),
])
def test_mask_name(name: str, masked: str) -> None:
    assert mask_name(name) == masked


@pytest.mark.parametrize(("parts", "masked", "full"), [
    (("广东省", "深圳市", "南山区", "科技园路1号2栋301"), "广东省深圳市南山区", "广东省深圳市南山区科技园路1号2栋301"),
    (("北京市", "北京市", "朝阳区", "建国路88号"), "北京市朝阳区", "北京市朝阳区建国路88号"),
    (("", "上海市", "浦东新区", ""), "上海市浦东新区", "上海市浦东新区"),
    (("", "", "", "幸福小区3号楼"), "", "幸福小区3号楼"),
    (("Guangdong", "Shenzhen", "Nanshan", "1 Keji Rd"), "Guangdong Shenzhen Nanshan",
     "Guangdong Shenzhen Nanshan 1 Keji Rd"),
    (("", "", "", ""), "", ""),
])
def test_addresses(parts: tuple[str, str, str, str], masked: str, full: str) -> None:
    assert mask_address(*parts) == masked
    assert full_address(*parts) == full


@pytest.mark.parametrize(("text", "masked"), [
    ("请拨 13800138000 联系", "请拨 138****8000 联系"),
    ("家里电话010-8888-6666，晚上打", "家里电话010****6666，晚上打"),
    ("call 138 0013 8000 after 6", "call 138****8000 after 6"),
    ("老人独居，上门前1小时电话", "老人独居，上门前1小时电话"),
    ("型号 KFR-35GW/ABC123 保修 2024-05-20", "型号 KFR-35GW/ABC123 保修 2024-05-20"),
    # Our record numbers and ISO dates/times are no phone numbers.
    ("上门记录 OS20261123-004 已签字", "上门记录 OS20261123-004 已签字"),
    ("预约 AP20261123-025 14:00-16:00", "预约 AP20261123-025 14:00-16:00"),
    ("CR20261123-001→WO20261123-001", "CR20261123-001→WO20261123-001"),
    ("回访 CS20261123-1234，DA20261123-007", "回访 CS20261123-1234，DA20261123-007"),
    ("2026-11-23 14:00 到 2026-11-23T16:30:00+08:00", "2026-11-23 14:00 到 2026-11-23T16:30:00+08:00"),
    ("购买日期 2024/05/20、2024.5.20", "购买日期 2024/05/20、2024.5.20"),
    # ... but a phone-like run next to or dressed up as one is still masked.
    ("OS20261123-004 客户 13800138000", "OS20261123-004 客户 138****8000"),
    ("2026-11-23 13800138000", "2026-11-23 138****8000"),
    ("WO20261123-0011380013800", "WO202****3800"),
    ("XWO20261123-001", "XWO202****3001"),
    ("WO13800138000-001", "WO138****0001"),
    ("1901-12-31138", "190****1138"),
    ("138-0013-8000 2026-11-23", "138****8000 2026-11-23"),
    ("20261123", "****1123"),
])
def test_mask_numbers_in_text(text: str, masked: str) -> None:
    assert mask_numbers_in_text(text) == masked
